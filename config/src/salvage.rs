//! Salvaging a document the schema rejected, so that semantic validation (GUIDs, references,
//! names, locations) still runs over everything the schema did not reject and `validate` shows
//! every problem in one run.

use super::yaml::{Path, Seg};
use super::{Access, Cloud, Cluster, Config, Credential, ResourceGroup};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// The configuration a document means once every rejected path is set aside: wrong values and
/// unknown keys removed (a rejected list item replaced, so later items keep their index),
/// required keys filled with empty placeholders, sections that still cannot be read dropped.
/// `None` when even that gives no [`Config`].
///
/// Findings about a set-aside path describe a placeholder, not the file: the loader drops them
/// with [`related`].
pub(crate) fn salvage(mut doc: Value, broken: &[Path]) -> Option<Config> {
    for p in broken {
        remove(&mut doc, p);
    }
    let root = doc.as_object_mut()?;
    root.insert("apiVersion".into(), json!("arcplan/v1"));
    string_or_empty(root, "stack");
    let azure = object_or_empty(root, "azure");
    string_or_empty(azure, "subscription");
    keep_if::<String>(azure, "tenant");
    keep_if::<Cloud>(azure, "cloud");
    keep_if::<Credential>(azure, "credential");
    keep_if::<Access>(root, "access");
    if let Some(list) = array_or_remove(root, "resourceProviders") {
        for v in list.iter_mut().filter(|v| !v.is_string()) {
            *v = json!("");
        }
    }
    if let Some(list) = array_or_remove(root, "resourceGroups") {
        for v in list {
            entry::<ResourceGroup>(v, &["name"]);
        }
    }
    if let Some(list) = array_or_remove(root, "clusters") {
        for v in list {
            entry::<Cluster>(v, &["name", "resourceGroup"]);
        }
    }
    serde_json::from_value(doc).ok()
}

/// True when a finding at key path `key` concerns the set-aside path `broken`: the same path,
/// one inside it, or one that contains it.
pub(crate) fn related(key: &str, broken: &Path) -> bool {
    if broken.0.is_empty() {
        return true;
    }
    let b = broken.to_string();
    let within = |inner: &str, outer: &str| {
        inner == outer
            || inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    };
    within(key, &b) || within(&b, key)
}

fn remove(doc: &mut Value, path: &Path) {
    let Some((last, parent)) = path.0.split_last() else {
        return;
    };
    let mut node = doc;
    for seg in parent {
        let next = match (node, seg) {
            (Value::Object(m), Seg::Key(k)) => m.get_mut(k),
            (Value::Array(a), Seg::Index(i)) => a.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return,
        }
    }
    match (node, last) {
        (Value::Object(m), Seg::Key(k)) => {
            m.remove(k);
        }
        (Value::Array(a), Seg::Index(i)) => {
            if let Some(v) = a.get_mut(*i) {
                *v = Value::Null;
            }
        }
        _ => {}
    }
}

fn string_or_empty(map: &mut Map<String, Value>, key: &str) {
    if !map.get(key).is_some_and(Value::is_string) {
        map.insert(key.to_owned(), json!(""));
    }
}

fn object_or_empty<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let v = map.entry(key.to_owned()).or_insert_with(|| json!({}));
    if !v.is_object() {
        *v = json!({});
    }
    v.as_object_mut().expect("an object was just put here")
}

fn keep_if<T: DeserializeOwned>(map: &mut Map<String, Value>, key: &str) {
    if let Some(v) = map.get(key)
        && serde_json::from_value::<T>(v.clone()).is_err()
    {
        map.remove(key);
    }
}

fn array_or_remove<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Vec<Value>> {
    if map.get(key).is_some_and(|v| !v.is_array()) {
        map.remove(key);
    }
    map.get_mut(key).and_then(Value::as_array_mut)
}

/// Makes a list item readable as `T`: an object with its required strings, else just those.
fn entry<T: DeserializeOwned>(v: &mut Value, required: &[&str]) {
    if !v.is_object() {
        *v = json!({});
    }
    let Some(map) = v.as_object_mut() else {
        return;
    };
    for key in required {
        string_or_empty(map, key);
    }
    if serde_json::from_value::<T>(Value::Object(map.clone())).is_err() {
        map.retain(|k, _| required.contains(&k.as_str()));
    }
}
