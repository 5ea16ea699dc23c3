//! PATCH: JSON patch, merge patch, strategic merge patch and server-side apply.

use serde_json::{Value, json};

use super::{Ctx, Mgr, Store, meta_str, now_rfc3339, parse_yaml_or_json, reset_paths};
use crate::kube::WatchEvent;
use crate::kube::fields::{self, ManagerEntry};
use crate::kube::resources::ResourceDef;
use crate::kube::status::ApiError;

impl Store {
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
}
