//! `azure.resourceGroup`: read from the subscription-wide list, plan (created with the stack's
//! tag; deleted only when tagged and empty of foreign resources), PUT and DELETE.

use super::*;

impl AzureProvider {
    pub(super) async fn read_resource_group(&self, address: &Address) -> ReadResponse {
        let mut r = ReadResponse::default();
        let found = match self.group_list().await {
            Ok(list) => Ok(list
                .iter()
                .find(|g| s(g, "name").eq_ignore_ascii_case(&address.name))
                .cloned()),
            // Without the right to list, read the one group.
            Err(e) if e.status == Some(403) => {
                let req = self.req(
                    Method::GET,
                    &self.rg_path(&address.name),
                    ApiKind::Resources,
                    None,
                );
                self.arm
                    .send_allow_404(&req)
                    .await
                    .map(|resp| (resp.status != 404).then_some(resp.body))
            }
            Err(e) => Err(e),
        };
        match found {
            Ok(None) => {}
            Ok(Some(b)) => {
                let state = json!({
                    "id": s(&b, "id"),
                    "name": s(&b, "name"),
                    "location": s(&b, "location"),
                    "tags": tags_of(&b),
                    "provisioningState": b.pointer("/properties/provisioningState").cloned().unwrap_or(Value::Null),
                });
                r.version = Some(digest(&json!([state["location"], state["tags"]])));
                r.state = Some(state);
            }
            Err(e) => r.diagnostics.push(diag_from(&e, address)),
        }
        r
    }

    pub(super) async fn plan_resource_group(&self, req: &PlanRequest) -> PlanResponse {
        let mut resp = PlanResponse::default();
        let addr = req.address.to_string();
        let Some(prior) = &req.prior else {
            resp.action = Some(if req.mode == PlanMode::Destroy {
                Action::NoOp
            } else {
                Action::Create
            });
            resp.after = Some(req.desired.clone());
            return resp;
        };
        let owner = owner_of(prior);
        if req.mode == PlanMode::Destroy {
            resp.action = Some(Action::NoOp);
            resp.outputs = Some(prior.clone());
            if owner.as_deref() != Some(self.settings.stack.as_str()) {
                resp.diagnostics.push(
                    Diagnostic::warning(
                        "not-owned",
                        format!(
                            "resource group {} is not tagged {STACK_TAG}={}; destroy leaves it",
                            req.address.name, self.settings.stack
                        ),
                    )
                    .with_address(addr),
                );
                return resp;
            }
            return match self.foreign_resources(&req.address.name).await {
                Ok(foreign) if foreign.is_empty() => {
                    resp.action = Some(Action::Delete);
                    resp.reason = Some(Reason::new(
                        ReasonCode::DeleteBecauseDestroy,
                        "destroy: the group holds nothing but this stack's resources",
                    ));
                    resp.outputs = None;
                    resp
                }
                Ok(foreign) => {
                    resp.diagnostics.push(
                        Diagnostic::warning(
                            "not-empty",
                            format!("resource group {} is not deleted: it holds {} resource(s) this stack does not manage: {}", req.address.name, foreign.len(), foreign.join(", ")),
                        )
                        .with_address(addr),
                    );
                    resp
                }
                Err(e) if e.status == Some(403) => {
                    resp.diagnostics.push(
                        Diagnostic::warning(
                            "not-deleted",
                            format!("resource group {} is left: the credential may not list what it holds, so arcplan cannot tell it is empty", req.address.name),
                        )
                        .with_address(addr),
                    );
                    resp
                }
                Err(e) => {
                    resp.diagnostics.push(diag_from(&e, &req.address));
                    resp
                }
            };
        }
        if let Some(o) = &owner
            && o != &self.settings.stack
        {
            resp.diagnostics.push(
                Diagnostic::error("owned-by-another-stack", format!("resource group {} belongs to stack `{o}` ({STACK_TAG}={o})", req.address.name))
                    .with_address(addr)
                    .with_hint(format!("use another group, or set `stack: {o}` if this file is meant to manage that stack")),
            );
            return resp;
        }
        let want = s(&req.desired, "location");
        if !want.is_empty() && norm_location(want) != norm_location(s(prior, "location")) {
            resp.diagnostics.push(
                Diagnostic::error(
                    "immutable-location",
                    format!("resource group {} is in {}, the configuration says {want}; a group's location cannot change", req.address.name, s(prior, "location")),
                )
                .with_address(addr)
                .with_hint(format!("set `location: {}` for this group, or use another group name", s(prior, "location"))),
            );
            return resp;
        }
        let changed = tag_diff(&req.desired, prior);
        if changed.is_empty() {
            resp.action = Some(Action::NoOp);
            resp.outputs = Some(prior.clone());
        } else {
            let mut after = prior.clone();
            after["tags"] = merged_tags(&req.desired, prior);
            resp.action = Some(Action::Update);
            resp.after = Some(after);
            resp.outputs = Some(prior.clone());
            if owner.is_none() {
                resp.reason = Some(Reason::new(
                    ReasonCode::Other,
                    format!(
                        "adopts the existing group into stack {}",
                        self.settings.stack
                    ),
                ));
            }
        }
        resp
    }

    pub(super) async fn foreign_resources(&self, rg: &str) -> Result<Vec<String>, ArmError> {
        let req = self.req(
            Method::GET,
            &format!("{}/resources", self.rg_path(rg)),
            ApiKind::Resources,
            None,
        );
        let items = self.arm.list_all(&req).await?;
        Ok(items
            .iter()
            .filter(|r| owner_of(r).as_deref() != Some(self.settings.stack.as_str()))
            .map(|r| format!("{} ({})", s(r, "name"), s(r, "type")))
            .collect())
    }

    pub(super) async fn apply_resource_group(
        &self,
        req: &ApplyRequest,
    ) -> Result<Option<Value>, ArmError> {
        let path = self.rg_path(&req.change.address.name);
        let started = Instant::now();
        match req.change.action {
            Action::Create => {
                let body = json!({"location": s(&req.desired, "location"), "tags": req.desired.get("tags").cloned().unwrap_or(json!({}))});
                let resp = self
                    .arm
                    .send(&self.req(Method::PUT, &path, ApiKind::Resources, Some(body)))
                    .await?;
                Ok(Some(resp.body))
            }
            Action::Update => {
                let live = self
                    .arm
                    .send(&self.req(Method::GET, &path, ApiKind::Resources, None))
                    .await?;
                let body = json!({"tags": merged_tags(&req.desired, &live.body)});
                let resp = self
                    .arm
                    .send(&self.req(Method::PATCH, &path, ApiKind::Resources, Some(body)))
                    .await?;
                Ok(Some(resp.body))
            }
            Action::Delete => {
                let resp = self
                    .arm
                    .send_allow_404(&self.req(Method::DELETE, &path, ApiKind::Resources, None))
                    .await?;
                if resp.status != 404 {
                    self.arm
                        .wait(
                            &resp,
                            &format!("deleting resource group {}", req.change.address.name),
                            self.settings.operation_timeout,
                            &req.cancel,
                            &self.progress(req, started),
                        )
                        .await?;
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }
}
