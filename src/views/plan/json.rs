//! The plan as a versioned JSON document modelled on `terraform show -json`.

use super::pointer::unescape;
use arcplan_engine::plan::{Action, Change, CheckResult, Plan, ReasonCode};
use serde_json::{Map, Value, json};

/// Terraform's `actions` list for an action (a replace deletes, then creates).
pub fn actions(action: Action) -> Vec<&'static str> {
    match action {
        Action::NoOp => vec!["no-op"],
        Action::Create => vec!["create"],
        Action::Read => vec!["read"],
        Action::Update => vec!["update"],
        Action::Replace => vec!["delete", "create"],
        Action::Delete => vec!["delete"],
    }
}

fn reason_code(code: ReasonCode) -> Value {
    serde_json::to_value(code).unwrap_or(Value::Null)
}

/// Removes the values at `paths` from `value` (an object key is removed; an array element
/// becomes null; the whole value becomes null).
pub(super) fn strip(value: &mut Value, paths: &[String]) {
    for p in paths {
        if p.is_empty() {
            *value = Value::Null;
            continue;
        }
        let Some((parent, last)) = p.rsplit_once('/') else {
            continue;
        };
        let key = unescape(last);
        match value.pointer_mut(parent) {
            Some(Value::Object(m)) => {
                m.remove(&key);
            }
            Some(Value::Array(a)) => {
                if let Some(slot) = key.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                    *slot = Value::Null;
                }
            }
            _ => {}
        }
    }
}

/// `{"a": {"b": true}}` for the pointer `/a/b` (an empty pointer flags the whole value).
pub(super) fn flags(paths: &[String]) -> Value {
    let mut root = Value::Object(Map::new());
    for p in paths {
        if p.is_empty() {
            return Value::Bool(true);
        }
        let segs: Vec<String> = p.split('/').skip(1).map(unescape).collect();
        let mut node = &mut root;
        for (i, seg) in segs.iter().enumerate() {
            let Value::Object(m) = node else {
                break; // an ancestor is already flagged
            };
            if i + 1 == segs.len() {
                m.insert(seg.clone(), Value::Bool(true));
                break;
            }
            node = m
                .entry(seg.clone())
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    root
}

/// A pointer as a list of steps, as Terraform writes `replace_paths`.
fn steps(ptr: &str) -> Value {
    Value::Array(
        ptr.split('/')
            .skip(1)
            .map(|s| Value::String(unescape(s)))
            .collect(),
    )
}

/// A check as JSON.
pub fn check_json(c: &CheckResult) -> Value {
    let mut v = json!({
        "address": c.address.to_string(),
        "type": c.address.rtype.as_str(),
        "name": c.address.name,
        "status": c.status,
        "summary": c.summary,
    });
    if let Some(fix) = &c.fix {
        v["fix"] = fix.clone().into();
    }
    if let Some(d) = &c.details {
        v["details"] = d.clone();
    }
    if !c.depends_on.is_empty() {
        v["depends_on"] = c.depends_on.iter().map(ToString::to_string).collect();
    }
    v
}

/// The plan as a versioned JSON document modelled on `terraform show -json`. Sensitive values
/// are absent from `before` and `after` (flagged in `before_sensitive` / `after_sensitive`);
/// values known only after apply are absent from `after` (flagged in `after_unknown`).
pub fn json(plan: &Plan) -> Value {
    let errored = plan.has_failed_checks();
    let s = plan.summary();
    let changes: Vec<Value> = plan.changes.iter().map(change_json).collect();
    json!({
        "format_version": "1.0",
        "arcplan_version": env!("CARGO_PKG_VERSION"),
        "plan_format_version": plan.format_version,
        "stack": plan.stack,
        "mode": plan.mode,
        "config_digest": plan.config_digest,
        "applyable": plan.has_changes() && !errored,
        "complete": !errored,
        "errored": errored,
        "resource_changes": changes,
        "resource_drift": plan.drifted().map(|c| c.address.to_string()).collect::<Vec<_>>(),
        "checks": plan.checks.iter().map(check_json).collect::<Vec<_>>(),
        "summary": { "add": s.add, "change": s.change, "destroy": s.destroy },
    })
}

fn change_json(c: &Change) -> Value {
    let side = |v: Option<&Value>, unknown: bool| {
        v.map_or(Value::Null, |v| {
            let mut v = v.clone();
            strip(&mut v, &c.sensitive_paths);
            if unknown {
                strip(&mut v, &c.after_unknown);
            }
            v
        })
    };
    let sensitive = |v: Option<&Value>| {
        if v.is_some() {
            flags(&c.sensitive_paths)
        } else {
            Value::Bool(false)
        }
    };
    let (before, after) = (c.before_value(), c.planned_after());
    let mut v = json!({
        "address": c.address.to_string(),
        "mode": if c.action == Action::Read { "data" } else { "managed" },
        "type": c.address.rtype.as_str(),
        "name": c.address.name,
        "change": {
            "actions": actions(c.action),
            "before": side(before.as_ref(), false),
            "after": side(after.as_deref(), true),
            "after_unknown": flags(&c.after_unknown),
            "before_sensitive": sensitive(before.as_ref()),
            "after_sensitive": sensitive(after.as_deref()),
            "replace_paths": c.replace_paths.iter().map(|p| steps(p)).collect::<Vec<_>>(),
        },
    });
    if let Some(r) = &c.reason {
        v["action_reason"] = reason_code(r.code);
        v["reason_message"] = r.message.clone().into();
    }
    if let Some(d) = &c.drift {
        v["drift"] =
            json!({"actions": actions(d.action), "message": d.message, "attributed": d.attributed});
    }
    if !c.cascades_to.is_empty() {
        v["cascades_to"] = c.cascades_to.iter().map(ToString::to_string).collect();
    }
    v
}
