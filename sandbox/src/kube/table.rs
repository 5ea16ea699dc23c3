//! `meta.k8s.io/v1` Table rendering (what `kubectl get` asks for), with the columns the real
//! server prints for the built-in kinds (each kind's `columns` and `cells`).

use serde_json::{Value, json};

use super::resources::{Column, ResourceDef};

fn column(c: &Column) -> Value {
    json!({"name": c.name, "type": c.ty, "format": c.format, "description": c.name, "priority": c.priority})
}

/// kubectl's `duration.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    if s < 120 {
        return format!("{s}s");
    }
    let m = s / 60;
    if m < 10 {
        let rs = s % 60;
        return if rs == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{rs}s")
        };
    }
    if m < 180 {
        return format!("{m}m");
    }
    let h = s / 3600;
    if h < 8 {
        let rm = m % 60;
        return if rm == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{rm}m")
        };
    }
    if h < 48 {
        return format!("{h}h");
    }
    let d = h / 24;
    if h < 24 * 8 {
        let rh = h % 24;
        return if rh == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{rh}h")
        };
    }
    if d < 365 * 2 {
        return format!("{d}d");
    }
    format!("{}y", d / 365)
}

/// The `Age` of an object as kubectl prints it.
pub fn age(obj: &Value) -> String {
    let Some(ts) = obj
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
    else {
        return "<unknown>".into();
    };
    match time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339) {
        Ok(t) => human_duration((time::OffsetDateTime::now_utc() - t).whole_seconds()),
        Err(_) => "<unknown>".into(),
    }
}

/// Renders objects as a Table. `include` is `None`, `Metadata` (default) or `Object`.
pub fn table(
    def: &ResourceDef,
    objects: &[&Value],
    resource_version: &str,
    include: &str,
    cont: Option<&str>,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({"cells": (def.cells)(o)});
            match include {
                "None" => {}
                "Object" => row["object"] = (*o).clone(),
                _ => {
                    let mut meta = o.get("metadata").cloned().unwrap_or(json!({}));
                    if let Some(m) = meta.as_object_mut() {
                        m.remove("managedFields");
                    }
                    row["object"] = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta});
                }
            }
            row
        })
        .collect();
    let mut meta = json!({"resourceVersion": resource_version});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": def.columns.iter().map(column).collect::<Vec<_>>(),
        "rows": rows,
    })
}
