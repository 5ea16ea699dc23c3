//! The checks: `azure.roleCheck` (effective permissions of the credential at a scope, naming
//! the missing actions and the roles that grant them) and `arc.connectivity` (the wait until
//! Azure shows the cluster Connected, with what the agents reported).

use super::*;

impl AzureProvider {
    pub(super) async fn check_roles(&self, req: &CheckRequest) -> CheckResponse {
        let d = &req.desired;
        let covers: Vec<String> = d
            .get("covers")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let mut needed: Vec<String> = Vec::new();
        let mut group_created = false;
        for c in req
            .changes
            .iter()
            .filter(|c| covers.contains(&c.address.to_string()))
        {
            let mut add = |a: &str| {
                if !needed.iter().any(|n| n.eq_ignore_ascii_case(a)) {
                    needed.push(a.to_owned());
                }
            };
            match (&c.address.rtype, c.action) {
                (t, Action::Create) if *t == crate::kinds::RESOURCE_PROVIDER => {
                    add(&format!("{}/register/action", c.address.name))
                }
                (t, Action::Create) if *t == crate::kinds::RESOURCE_GROUP => {
                    group_created = true;
                    add("Microsoft.Resources/subscriptions/resourceGroups/write")
                }
                (t, Action::Update) if *t == crate::kinds::RESOURCE_GROUP => {
                    add("Microsoft.Resources/subscriptions/resourceGroups/write")
                }
                (t, Action::Delete) if *t == crate::kinds::RESOURCE_GROUP => {
                    add("Microsoft.Resources/subscriptions/resourceGroups/delete")
                }
                (t, Action::Create | Action::Update) if *t == crate::kinds::CONNECTED_CLUSTER => {
                    add("Microsoft.Kubernetes/connectedClusters/write");
                    add("Microsoft.Kubernetes/connectedClusters/read");
                }
                (t, Action::Replace) if *t == crate::kinds::CONNECTED_CLUSTER => {
                    add("Microsoft.Kubernetes/connectedClusters/delete");
                    add("Microsoft.Kubernetes/connectedClusters/write");
                }
                (t, Action::Delete) if *t == crate::kinds::CONNECTED_CLUSTER => {
                    add("Microsoft.Kubernetes/connectedClusters/delete")
                }
                _ => {}
            }
        }
        let scope = if group_created || d.get("scope").is_none() {
            s(d, "fallbackScope")
        } else {
            s(d, "scope")
        };
        let scope = if scope.is_empty() {
            s(d, "scope").to_owned()
        } else {
            scope.to_owned()
        };
        let mut result = CheckResult {
            address: req.address.clone(),
            status: CheckStatus::Pass,
            summary: String::new(),
            fix: None,
            details: None,
            depends_on: Vec::new(),
            desired: None,
        };
        let mut diagnostics = Diagnostics::new();
        if needed.is_empty() {
            result.summary = format!("no planned change needs permissions at {scope}");
            return CheckResponse {
                result,
                diagnostics,
            };
        }
        let list = self.req(
            Method::GET,
            &format!("{scope}/providers/Microsoft.Authorization/permissions"),
            ApiKind::Authorization,
            None,
        );
        let perms: Vec<Permission> = match self.arm.list_all(&list).await {
            Ok(items) => items.iter().map(Permission::from_json).collect(),
            Err(e) => {
                diagnostics.push(diag_from(&e, &req.address));
                result.status = CheckStatus::Fail;
                result.summary = format!("cannot read the credential's permissions at {scope}");
                return CheckResponse {
                    result,
                    diagnostics,
                };
            }
        };
        let absent = missing(&perms, &needed);
        let principal = match (
            self.arm.token_claim("appid").await,
            self.arm.token_claim("oid").await,
        ) {
            (Some(app), Some(oid)) => format!("application {app} (object id {oid})"),
            (None, Some(oid)) => format!("object id {oid}"),
            (Some(app), None) => format!("application {app}"),
            _ => "the signed-in principal".to_owned(),
        };
        let preferred: Vec<String> = d
            .get("requireAnyRole")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if absent.is_empty() {
            result.summary = format!("{principal} may {} at {scope}", needed.join(", "));
        } else {
            let roles = roles_granting(&needed, &preferred);
            result.status = CheckStatus::Fail;
            result.summary = format!("{principal} lacks {} at {scope}", absent.join(", "));
            let assignee = self
                .arm
                .token_claim("oid")
                .await
                .unwrap_or_else(|| "<principal>".into());
            result.fix = Some(match roles.first() {
                Some(r) => format!(
                    "grant {} at {scope}, e.g. `az role assignment create --assignee {assignee} --role \"{r}\" --scope {scope}`",
                    roles
                        .iter()
                        .map(|r| format!("\"{r}\""))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
                None => format!(
                    "grant a role that includes {} at {scope}",
                    absent.join(", ")
                ),
            });
            result.details = Some(
                json!({"principal": principal, "scope": scope, "missing": absent, "needed": needed, "rolesThatGrant": roles}),
            );
        }
        CheckResponse {
            result,
            diagnostics,
        }
    }

    pub(super) async fn check_connectivity(&self, req: &CheckRequest) -> CheckResponse {
        let d = &req.desired;
        let mut result = CheckResult {
            address: req.address.clone(),
            status: CheckStatus::Pending,
            summary: "waits for Azure to show the cluster Connected".into(),
            fix: None,
            details: None,
            depends_on: Vec::new(),
            desired: None,
        };
        let mut diagnostics = Diagnostics::new();
        if req.phase == CheckPhase::Plan {
            return CheckResponse {
                result,
                diagnostics,
            };
        }
        let id = s(d, "connectedClusterId").to_owned();
        let timeout =
            humantime::parse_duration(s(d, "timeout")).unwrap_or(Duration::from_secs(20 * 60));
        let started = Instant::now();
        let get = self.req(Method::GET, &id, ApiKind::ConnectedClusters, None);
        loop {
            let last = match self.arm.send(&get).await {
                Ok(resp) => cluster_state(&resp.body),
                Err(e) => {
                    diagnostics.push(diag_from(&e, &req.address));
                    result.status = CheckStatus::Fail;
                    result.summary = "cannot read the connected cluster".into();
                    return CheckResponse {
                        result,
                        diagnostics,
                    };
                }
            };
            let status = s(&last, "connectivityStatus").to_owned();
            if status == "Connected" {
                result.status = CheckStatus::Pass;
                result.summary = format!(
                    "Connected: agent {}, Kubernetes {}, {} nodes, {} cores",
                    s(&last, "agentVersion"),
                    s(&last, "kubernetesVersion"),
                    last.get("totalNodeCount").cloned().unwrap_or(Value::Null),
                    last.get("totalCoreCount").cloned().unwrap_or(Value::Null)
                );
                result.details = Some(cluster_outputs(&last));
                return CheckResponse {
                    result,
                    diagnostics,
                };
            }
            if started.elapsed() >= timeout || req.cancel.is_cancelled() {
                result.status = CheckStatus::Fail;
                result.summary = if req.cancel.is_cancelled() {
                    let waited = humantime::format_duration(Duration::from_secs(
                        started.elapsed().as_secs(),
                    ));
                    format!("still {status} after {waited} (interrupted)")
                } else {
                    // The configured value, as written (`agents.connectTimeout`).
                    format!(
                        "still {status} after {} (agents.connectTimeout)",
                        crate::kubernetes::readiness::configured(timeout)
                    )
                };
                result.fix = Some(match status.as_str() {
                    "Connecting" => "the agents have not reported to Azure yet: check `kubectl -n azure-arc get pods`, outbound access to Azure (proxy, firewall), and that the key in Secret azure-arc/azure-arc-connect-privatekey matches the resource (run plan)".into(),
                    "Offline" | "Expired" => "the agents stopped reporting: check the cluster's outbound connectivity and the agents' logs (`kubectl -n azure-arc logs deploy/clusterconnect-agent`)".into(),
                    "AgentNotInstalled" => "the agents are not installed: run apply again".into(),
                    _ => "check `kubectl -n azure-arc get pods` and the cluster's outbound connectivity".into(),
                });
                result.details = Some(cluster_outputs(&last));
                return CheckResponse {
                    result,
                    diagnostics,
                };
            }
            req.events.emit(Event::ApplyProgress {
                address: req.address.clone(),
                message: format!("connectivityStatus {status}"),
                elapsed_seconds: started.elapsed().as_secs_f64(),
            });
            tokio::select! {
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
                _ = req.cancel.cancelled() => {}
            }
        }
    }
}
