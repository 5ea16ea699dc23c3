//! `arc.connectedCluster`: read from the subscription-wide list, plan (replace for location,
//! identity, key and infrastructure changes, with the reason), PUT and DELETE as long-running
//! operations, and the state and outputs the plan shows.

use super::*;

impl AzureProvider {
    pub(super) async fn read_connected_cluster(
        &self,
        address: &Address,
        desired: &Value,
    ) -> ReadResponse {
        let mut r = ReadResponse::default();
        let rg = s(desired, "resourceGroup");
        let found = match self.cluster_list().await {
            Ok(list) => Ok(list
                .iter()
                .find(|c| {
                    s(c, "name").eq_ignore_ascii_case(&address.name)
                        && rg_of(s(c, "id")).eq_ignore_ascii_case(rg)
                })
                .cloned()),
            // Without the right to list at the subscription, read the one cluster.
            Err(e) if e.status == Some(403) => {
                let path = self.cc_path(desired, None, &address.name);
                let req = self.req(Method::GET, &path, ApiKind::ConnectedClusters, None);
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
                let state = cluster_state(&b);
                r.version = Some(digest(&json!([
                    state["location"],
                    state["tags"],
                    state["agentPublicKeyCertificate"],
                    state["distribution"],
                    state["infrastructure"],
                    state["agentAutoUpgrade"]
                ])));
                r.state = Some(state);
            }
            Err(e) => r.diagnostics.push(diag_from(&e, address)),
        }
        r
    }

    pub(super) fn plan_connected_cluster(&self, req: &PlanRequest) -> PlanResponse {
        let mut resp = PlanResponse::default();
        let d = &req.desired;
        let key_unknown = req
            .unknown
            .iter()
            .any(|u| u == "/agentPublicKeyCertificate");
        let Some(prior) = &req.prior else {
            resp.action = Some(if req.mode == PlanMode::Destroy {
                Action::NoOp
            } else {
                Action::Create
            });
            let mut after = d.clone();
            after["id"] = Value::Null;
            resp.after = Some(after);
            return resp;
        };
        let owner = owner_of(prior);
        let ours = owner.as_deref() == Some(self.settings.stack.as_str());
        if req.mode == PlanMode::Destroy {
            if ours {
                resp.action = Some(Action::Delete);
                resp.reason = Some(Reason::new(
                    ReasonCode::DeleteBecauseDestroy,
                    "destroy: disconnects the cluster from Azure Arc",
                ));
            } else {
                resp.action = Some(Action::NoOp);
                resp.outputs = Some(prior.clone());
                resp.diagnostics.push(
                    Diagnostic::warning(
                        "not-owned",
                        format!(
                            "connected cluster {} is not tagged {STACK_TAG}={}; destroy leaves it",
                            req.address.name, self.settings.stack
                        ),
                    )
                    .with_address(req.address.to_string()),
                );
            }
            return resp;
        }
        if let Some(o) = &owner
            && !ours
        {
            resp.diagnostics.push(
                Diagnostic::error(
                    "owned-by-another-stack",
                    format!(
                        "connected cluster {} belongs to stack `{o}`",
                        req.address.name
                    ),
                )
                .with_address(req.address.to_string())
                .with_hint(format!(
                    "rename the cluster in this file, or manage it from stack `{o}`"
                )),
            );
            return resp;
        }
        let mut replace = Vec::new();
        let mut why = Vec::new();
        if norm_location(s(d, "location")) != norm_location(s(prior, "location")) {
            replace.push("/location".to_owned());
            why.push(format!(
                "location {} -> {} cannot change in place",
                s(prior, "location"),
                s(d, "location")
            ));
        }
        let identity = |v: &Value| {
            v.pointer("/identity/type")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
        };
        if identity(d) != identity(prior) {
            replace.push("/identity".to_owned());
            why.push("the identity type cannot change in place".to_owned());
        }
        if key_unknown {
            replace.push("/agentPublicKeyCertificate".to_owned());
            why.push("the onboarding key Secret is missing from the cluster, and a new key means a new connected cluster".to_owned());
        } else if s(d, "agentPublicKeyCertificate") != s(prior, "agentPublicKeyCertificate") {
            replace.push("/agentPublicKeyCertificate".to_owned());
            why.push("the key in Secret azure-arc/azure-arc-connect-privatekey does not match the resource's agentPublicKeyCertificate".to_owned());
        }
        if !s(d, "infrastructure").eq_ignore_ascii_case(s(prior, "infrastructure")) {
            replace.push("/infrastructure".to_owned());
            why.push(format!(
                "infrastructure {} -> {} cannot change in place",
                s(prior, "infrastructure"),
                s(d, "infrastructure")
            ));
        }
        let mut after = prior.clone();
        for k in [
            "location",
            "distribution",
            "infrastructure",
            "agentPublicKeyCertificate",
            "agentAutoUpgrade",
            "identity",
        ] {
            if let Some(v) = d.get(k) {
                after[k] = v.clone();
            }
        }
        after["tags"] = merged_tags(d, prior);
        if req.replace_requested || !replace.is_empty() {
            resp.action = Some(Action::Replace);
            resp.reason = Some(if req.replace_requested && replace.is_empty() {
                Reason::new(
                    ReasonCode::Requested,
                    "replacement was requested (--replace); the agents must be onboarded again",
                )
            } else {
                Reason::new(
                    ReasonCode::CannotUpdate,
                    format!("{}; the agents must be onboarded again", why.join("; ")),
                )
            });
            resp.requires_replace = replace;
            after["tags"] = d.get("tags").cloned().unwrap_or(Value::Null);
            resp.after = Some(after);
            return resp;
        }
        let changed = !tag_diff(d, prior).is_empty()
            || !s(d, "distribution").eq_ignore_ascii_case(s(prior, "distribution"))
            || d.get("agentAutoUpgrade") != prior.get("agentAutoUpgrade");
        resp.outputs = Some(cluster_outputs(prior));
        if changed {
            resp.action = Some(Action::Update);
            resp.after = Some(after);
            if owner.is_none() {
                resp.reason = Some(Reason::new(
                    ReasonCode::Other,
                    format!(
                        "adopts the existing connected cluster into stack {}",
                        self.settings.stack
                    ),
                ));
            }
        } else {
            resp.action = Some(Action::NoOp);
        }
        resp
    }

    pub(super) fn cluster_body(&self, d: &Value) -> Value {
        let mut props = json!({
            "agentPublicKeyCertificate": s(d, "agentPublicKeyCertificate"),
            "distribution": s(d, "distribution"),
            "infrastructure": s(d, "infrastructure"),
        });
        if d.get("agentAutoUpgrade") == Some(&json!(false)) {
            props["arcAgentProfile"] = json!({"agentAutoUpgrade": "Disabled"});
        }
        json!({
            "location": s(d, "location"),
            "tags": d.get("tags").cloned().unwrap_or(json!({})),
            "identity": {"type": d.pointer("/identity/type").and_then(Value::as_str).unwrap_or("SystemAssigned")},
            "properties": props,
        })
    }

    pub(super) async fn put_cluster(
        &self,
        req: &ApplyRequest,
        path: &str,
        body: Value,
        started: Instant,
    ) -> Result<Value, ArmError> {
        let resp = self
            .arm
            .send(&self.req(Method::PUT, path, ApiKind::ConnectedClusters, Some(body)))
            .await?;
        self.arm
            .wait(
                &resp,
                &format!("creating connected cluster {}", req.change.address.name),
                self.settings.operation_timeout,
                &req.cancel,
                &self.progress(req, started),
            )
            .await?;
        let done = self
            .arm
            .send(&self.req(Method::GET, path, ApiKind::ConnectedClusters, None))
            .await?;
        match done
            .body
            .pointer("/properties/provisioningState")
            .and_then(Value::as_str)
        {
            Some("Failed") | Some("Canceled") => Err(ArmError {
                kind: ArmErrorKind::OperationFailed,
                status: None,
                code: "ProvisioningFailed".into(),
                message: format!(
                    "connected cluster {} ended in provisioningState {}",
                    req.change.address.name,
                    done.body
                        .pointer("/properties/provisioningState")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                ),
                request: format!("GET {path}"),
                request_id: done.request_id().map(str::to_owned),
                correlation_id: String::new(),
            }),
            _ => Ok(cluster_outputs(&cluster_state(&done.body))),
        }
    }

    pub(super) async fn delete_cluster(
        &self,
        req: &ApplyRequest,
        path: &str,
        started: Instant,
    ) -> Result<(), ArmError> {
        let resp = self
            .arm
            .send_allow_404(&self.req(Method::DELETE, path, ApiKind::ConnectedClusters, None))
            .await?;
        if resp.status == 404 || resp.status == 204 {
            return Ok(());
        }
        self.arm
            .wait(
                &resp,
                &format!("deleting connected cluster {}", req.change.address.name),
                self.settings.operation_timeout,
                &req.cancel,
                &self.progress(req, started),
            )
            .await?;
        Ok(())
    }

    pub(super) async fn apply_connected_cluster(
        &self,
        req: &ApplyRequest,
    ) -> Result<Option<Value>, ArmError> {
        let name = &req.change.address.name;
        let path = self.cc_path(&req.desired, req.change.before.as_ref(), name);
        let started = Instant::now();
        match req.change.action {
            Action::Create => Ok(Some(
                self.put_cluster(req, &path, self.cluster_body(&req.desired), started)
                    .await?,
            )),
            Action::Replace => {
                self.delete_cluster(req, &path, started).await?;
                Ok(Some(
                    self.put_cluster(req, &path, self.cluster_body(&req.desired), started)
                        .await?,
                ))
            }
            Action::Update => {
                let live = self
                    .arm
                    .send(&self.req(Method::GET, &path, ApiKind::ConnectedClusters, None))
                    .await?;
                let live_state = cluster_state(&live.body);
                if req.desired.get("agentAutoUpgrade") != live_state.get("agentAutoUpgrade") {
                    // Auto-upgrade is not patchable: PUT the whole resource, key unchanged.
                    let mut d = req.desired.clone();
                    d["tags"] = merged_tags(&req.desired, &live_state);
                    return Ok(Some(
                        self.put_cluster(req, &path, self.cluster_body(&d), started)
                            .await?,
                    ));
                }
                let body = json!({
                    "tags": merged_tags(&req.desired, &live_state),
                    "properties": {"distribution": s(&req.desired, "distribution")},
                });
                let resp = self
                    .arm
                    .send(&self.req(Method::PATCH, &path, ApiKind::ConnectedClusters, Some(body)))
                    .await?;
                self.arm
                    .wait(
                        &resp,
                        &format!("updating connected cluster {name}"),
                        self.settings.operation_timeout,
                        &req.cancel,
                        &self.progress(req, started),
                    )
                    .await?;
                let done = self
                    .arm
                    .send(&self.req(Method::GET, &path, ApiKind::ConnectedClusters, None))
                    .await?;
                Ok(Some(cluster_outputs(&cluster_state(&done.body))))
            }
            Action::Delete => {
                self.delete_cluster(req, &path, started).await?;
                Ok(None)
            }
            _ => Ok(None),
        }
    }
}

/// The live state arcplan compares and shows, from an ARM connected cluster body.
pub fn cluster_state(b: &Value) -> Value {
    let p = b.get("properties").cloned().unwrap_or(Value::Null);
    let auto = p
        .pointer("/arcAgentProfile/agentAutoUpgrade")
        .and_then(Value::as_str)
        .map(|v| !v.eq_ignore_ascii_case("Disabled"))
        .unwrap_or(true);
    json!({
        "id": s(b, "id"),
        "name": s(b, "name"),
        "resourceGroup": rg_of(s(b, "id")),
        "location": s(b, "location"),
        "tags": tags_of(b),
        "identity": {"type": b.pointer("/identity/type").cloned().unwrap_or(Value::Null)},
        "distribution": s(&p, "distribution"),
        "infrastructure": s(&p, "infrastructure"),
        "agentPublicKeyCertificate": s(&p, "agentPublicKeyCertificate"),
        "agentAutoUpgrade": auto,
        "provisioningState": p.get("provisioningState").cloned().unwrap_or(Value::Null),
        "connectivityStatus": p.get("connectivityStatus").cloned().unwrap_or(Value::Null),
        "agentVersion": p.get("agentVersion").cloned().unwrap_or(Value::Null),
        "kubernetesVersion": p.get("kubernetesVersion").cloned().unwrap_or(Value::Null),
        "totalNodeCount": p.get("totalNodeCount").cloned().unwrap_or(Value::Null),
        "totalCoreCount": p.get("totalCoreCount").cloned().unwrap_or(Value::Null),
        "lastConnectivityTime": p.get("lastConnectivityTime").cloned().unwrap_or(Value::Null),
        "managedIdentityCertificateExpirationTime": p.get("managedIdentityCertificateExpirationTime").cloned().unwrap_or(Value::Null),
    })
}

pub(super) fn cluster_outputs(state: &Value) -> Value {
    let mut o = Map::new();
    for k in [
        "id",
        "name",
        "connectivityStatus",
        "agentVersion",
        "kubernetesVersion",
        "totalNodeCount",
        "totalCoreCount",
        "lastConnectivityTime",
        "managedIdentityCertificateExpirationTime",
    ] {
        o.insert(k.to_owned(), state.get(k).cloned().unwrap_or(Value::Null));
    }
    Value::Object(o)
}
