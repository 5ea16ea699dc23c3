//! Merging: server-side apply's merge of a configuration into the live object, paths into
//! objects, and the strategic-merge-patch subset.

use serde_json::{Map, Value};

use super::{ListKind, item_pe, list_kind, map_atomic};

/// Merges an applied configuration into the live object (`TypedValue.Merge`).
pub fn merge_apply(live: &Value, config: &Value) -> Value {
    let mut fields = Vec::new();
    merge_value(live, config, &mut fields)
}

fn merge_value(live: &Value, config: &Value, fields: &mut Vec<String>) -> Value {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) if fields.is_empty() || !map_atomic(fields) => {
            let mut out = l.clone();
            for (k, cv) in c {
                fields.push(k.clone());
                let merged = match l.get(k) {
                    Some(lv) => merge_value(lv, cv, fields),
                    None => cv.clone(),
                };
                fields.pop();
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) => {
            let kind = list_kind(fields);
            if kind == ListKind::Atomic {
                return config.clone();
            }
            let lkeys: Vec<String> = l
                .iter()
                .enumerate()
                .map(|(i, v)| item_pe(kind, v, i))
                .collect();
            let ckeys: Vec<String> = c
                .iter()
                .enumerate()
                .map(|(i, v)| item_pe(kind, v, i))
                .collect();
            let mut out = Vec::new();
            for (i, cv) in c.iter().enumerate() {
                match lkeys.iter().position(|k| *k == ckeys[i]) {
                    Some(li) if matches!(kind, ListKind::Keyed(_)) => {
                        out.push(merge_value(&l[li], cv, fields))
                    }
                    _ => out.push(cv.clone()),
                }
            }
            for (i, lv) in l.iter().enumerate() {
                if !ckeys.contains(&lkeys[i]) {
                    out.push(lv.clone());
                }
            }
            Value::Array(out)
        }
        _ => config.clone(),
    }
}

/// Removes the value at `path` from `obj`; returns whether something was removed.
pub fn remove_path(obj: &mut Value, path: &[String]) -> bool {
    let Some((last, init)) = path.split_last() else {
        return false;
    };
    let mut fields: Vec<String> = Vec::new();
    let mut cur = obj;
    for pe in init {
        match step_mut(cur, pe, &mut fields) {
            Some(n) => cur = n,
            None => return false,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        return cur.as_object_mut().and_then(|m| m.remove(f)).is_some();
    }
    let kind = list_kind(&fields);
    if let Some(items) = cur.as_array_mut() {
        let pos = items
            .iter()
            .enumerate()
            .position(|(i, v)| item_pe(kind, v, i) == *last);
        if let Some(p) = pos {
            items.remove(p);
            return true;
        }
    }
    false
}

fn step_mut<'a>(cur: &'a mut Value, pe: &str, fields: &mut Vec<String>) -> Option<&'a mut Value> {
    if let Some(f) = pe.strip_prefix("f:") {
        fields.push(f.to_string());
        return cur.as_object_mut()?.get_mut(f);
    }
    let kind = list_kind(fields);
    let items = cur.as_array_mut()?;
    let pos = items
        .iter()
        .enumerate()
        .position(|(i, v)| item_pe(kind, v, i) == pe)?;
    items.get_mut(pos)
}

/// Reads the value at `path`.
pub fn get_path<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut fields: Vec<String> = Vec::new();
    let mut cur = obj;
    for pe in path {
        if let Some(f) = pe.strip_prefix("f:") {
            fields.push(f.to_string());
            cur = cur.as_object()?.get(f)?;
        } else {
            let kind = list_kind(&fields);
            let items = cur.as_array()?;
            cur = items
                .iter()
                .enumerate()
                .find(|(i, v)| item_pe(kind, v, *i) == *pe)?
                .1;
        }
    }
    Some(cur)
}

/// Strategic merge patch (subset): a JSON merge patch where known associative lists merge by
/// key, `$patch: delete|replace` directives are honoured and `$setElementOrder/...`,
/// `$retainKeys` and `$deleteFromPrimitiveList/...` directives are understood or ignored.
pub fn strategic_merge(target: &Value, patch: &Value) -> Value {
    let mut fields = Vec::new();
    smp_value(target, patch, &mut fields)
}

fn smp_value(target: &Value, patch: &Value, fields: &mut Vec<String>) -> Value {
    match patch {
        Value::Object(p) => {
            if p.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut out = p.clone();
                out.remove("$patch");
                return Value::Object(out);
            }
            let mut out = match target {
                Value::Object(t) => t.clone(),
                _ => Map::new(),
            };
            for (k, pv) in p {
                if k.starts_with("$setElementOrder/") || k == "$retainKeys" || k == "$patch" {
                    continue;
                }
                if let Some(list) = k.strip_prefix("$deleteFromPrimitiveList/") {
                    if let (Some(Value::Array(items)), Some(del)) =
                        (out.get_mut(list), pv.as_array())
                    {
                        items.retain(|v| !del.contains(v));
                    }
                    continue;
                }
                if pv.is_null() {
                    out.remove(k);
                    continue;
                }
                fields.push(k.clone());
                let merged = match out.get(k) {
                    Some(tv) => smp_value(tv, pv, fields),
                    None => smp_value(&Value::Null, pv, fields),
                };
                fields.pop();
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        Value::Array(pitems) => {
            let kind = list_kind(fields);
            let (ListKind::Keyed(_), Value::Array(titems)) = (kind, target) else {
                return Value::Array(pitems.iter().map(strip_directives).collect());
            };
            let mut out: Vec<Value> = titems.clone();
            for (i, pv) in pitems.iter().enumerate() {
                let key = item_pe(kind, pv, i);
                let pos = out
                    .iter()
                    .enumerate()
                    .position(|(j, v)| item_pe(kind, v, j) == key);
                let directive = pv.get("$patch").and_then(Value::as_str);
                match (pos, directive) {
                    (Some(j), Some("delete")) => {
                        out.remove(j);
                    }
                    (None, Some("delete")) => {}
                    (Some(j), _) => {
                        let merged = smp_value(&out[j], pv, fields);
                        out[j] = merged;
                    }
                    (None, _) => out.push(strip_directives(pv)),
                }
            }
            Value::Array(out)
        }
        _ => patch.clone(),
    }
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, v)| !k.starts_with('$') && !v.is_null())
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

/// Removes `null` map values recursively (typed decoding drops them).
pub fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            for c in m.values_mut() {
                strip_nulls(c);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}
