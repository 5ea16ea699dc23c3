//! Object comparison (`typed.Comparison`): which paths an update added, modified or removed.

use serde_json::{Map, Value};

use super::{FieldSet, ListKind, item_pe, list_kind, map_atomic};

/// The result of comparing two objects (`typed.Comparison`).
#[derive(Debug, Default, Clone)]
pub struct Comparison {
    /// Paths only in the new object.
    pub added: FieldSet,
    /// Leaf paths whose value changed.
    pub modified: FieldSet,
    /// Paths only in the old object.
    pub removed: FieldSet,
}

impl Comparison {
    /// True when nothing differs.
    pub fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}

/// Compares two objects as `TypedValue.Compare` does.
pub fn compare(old: &Value, new: &Value) -> Comparison {
    let mut c = Comparison::default();
    let mut fields = Vec::new();
    let mut path = Vec::new();
    cmp_map(
        old.as_object(),
        new.as_object(),
        &mut fields,
        &mut path,
        &mut c,
    );
    c
}

fn is_empty_map(v: Option<&Value>) -> bool {
    match v {
        None => true,
        Some(Value::Object(m)) => m.is_empty(),
        _ => false,
    }
}

fn cmp_map(
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
    fields: &mut Vec<String>,
    path: &mut Vec<String>,
    c: &mut Comparison,
) {
    let mut keys: Vec<&String> = old.map(|m| m.keys().collect()).unwrap_or_default();
    if let Some(n) = new {
        for k in n.keys() {
            if !old.is_some_and(|o| o.contains_key(k)) {
                keys.push(k);
            }
        }
    }
    for k in keys {
        let o = old.and_then(|m| m.get(k));
        let n = new.and_then(|m| m.get(k));
        fields.push(k.clone());
        path.push(format!("f:{k}"));
        cmp_value(o, n, fields, path, c);
        item_hook(o, n, path, c);
        path.pop();
        fields.pop();
    }
}

fn item_hook(o: Option<&Value>, n: Option<&Value>, path: &[String], c: &mut Comparison) {
    match (o, n) {
        (None, Some(_)) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        _ => {}
    }
}

fn cmp_leaf(o: Option<&Value>, n: Option<&Value>, path: &[String], c: &mut Comparison) {
    match (o, n) {
        (None, Some(_)) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        (Some(a), Some(b)) if a != b => c.modified.insert(path),
        _ => {}
    }
}

fn cmp_value(
    o: Option<&Value>,
    n: Option<&Value>,
    fields: &mut Vec<String>,
    path: &mut Vec<String>,
    c: &mut Comparison,
) {
    let sample = n.or(o);
    match sample {
        Some(Value::Object(_)) => {
            let both_maps = o.is_none_or(Value::is_object) && n.is_none_or(Value::is_object);
            if !both_maps || map_atomic(fields) || (is_empty_map(o) && is_empty_map(n)) {
                cmp_leaf(o, n, path, c);
            } else {
                cmp_map(
                    o.and_then(Value::as_object),
                    n.and_then(Value::as_object),
                    fields,
                    path,
                    c,
                );
            }
        }
        Some(Value::Array(_)) => {
            let both = o.is_none_or(Value::is_array) && n.is_none_or(Value::is_array);
            let kind = list_kind(fields);
            if !both || kind == ListKind::Atomic {
                cmp_leaf(o, n, path, c);
                return;
            }
            let empty = Vec::new();
            let oi = o.and_then(Value::as_array).unwrap_or(&empty);
            let ni = n.and_then(Value::as_array).unwrap_or(&empty);
            let okeys: Vec<String> = oi
                .iter()
                .enumerate()
                .map(|(i, v)| item_pe(kind, v, i))
                .collect();
            let nkeys: Vec<String> = ni
                .iter()
                .enumerate()
                .map(|(i, v)| item_pe(kind, v, i))
                .collect();
            let mut order: Vec<&String> = okeys.iter().collect();
            for k in &nkeys {
                if !okeys.contains(k) {
                    order.push(k);
                }
            }
            for k in order {
                let ov = okeys.iter().position(|x| x == k).map(|i| &oi[i]);
                let nv = nkeys.iter().position(|x| x == k).map(|i| &ni[i]);
                path.push(k.clone());
                if matches!(kind, ListKind::Keyed(_)) {
                    cmp_map(
                        ov.and_then(Value::as_object),
                        nv.and_then(Value::as_object),
                        fields,
                        path,
                        c,
                    );
                    // A changed non-map item is a modified leaf.
                    if ov.is_some_and(|v| !v.is_object()) || nv.is_some_and(|v| !v.is_object()) {
                        cmp_leaf(ov, nv, path, c);
                    }
                } else {
                    cmp_leaf(ov, nv, path, c);
                }
                item_hook(ov, nv, path, c);
                path.pop();
            }
        }
        _ => cmp_leaf(o, n, path, c),
    }
}
