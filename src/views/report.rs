//! The end of an apply: `Apply complete! Resources: ...` when everything succeeded, otherwise
//! what changed, what failed (with every error and its hint), what was skipped and why, and the
//! counts of what changed so far.
// The commands call these as they are wired in; until then only the tests do.

use super::plan::{BOLD, CREATE, DELETE, UPDATE, indent_rest, paint};
use super::progress::duration;
use super::{ERROR, SUCCESS};
use arcplan_engine::diag::Severity;
use arcplan_engine::executor::{ApplyReport, StepResult, StepStatus};
use arcplan_engine::plan::{Action, CheckResult, CheckStatus, Plan, PlanMode};

/// The question before an apply (or a destroy) changes anything, in Terraform's words.
pub fn approval_prompt(destroy: bool) -> &'static str {
    if destroy {
        "Do you really want to destroy all resources?\n  arcplan will destroy everything this file manages, as shown above.\n  There is no undo. Only 'yes' will be accepted to confirm."
    } else {
        "Do you want to perform these actions?\n  arcplan will perform the actions described above.\n  Only 'yes' will be accepted to approve."
    }
}

/// What the run is called in its last line: `Apply` or `Destroy`.
pub fn operation_title(plan: &Plan) -> &'static str {
    if plan.mode == PlanMode::Destroy {
        "Destroy"
    } else {
        "Apply"
    }
}

fn symbol(action: Action, color: bool) -> String {
    let s = match action {
        Action::Create => paint(CREATE, "+", color),
        Action::Update => paint(UPDATE, "~", color),
        Action::Delete => paint(DELETE, "-", color),
        Action::Replace => format!(
            "{}/{}",
            paint(DELETE, "-", color),
            paint(CREATE, "+", color)
        ),
        Action::Read | Action::NoOp => " ".to_owned(),
    };
    let width = action.symbol().len();
    format!("{}{s}", " ".repeat(3usize.saturating_sub(width)))
}

fn past(action: Action) -> &'static str {
    match action {
        Action::Create => "created",
        Action::Update => "updated in place",
        Action::Replace => "replaced",
        Action::Delete => "destroyed",
        Action::Read => "checked",
        Action::NoOp => "unchanged",
    }
}

/// The apply's outcome for a terminal. `checks` are the post-apply check results seen in
/// `Event::Check` during the run (passed ones are listed with their summary). Ends with
/// exactly `Apply complete! Resources: X added, Y changed, Z destroyed.` when every step
/// succeeded; otherwise starts with `Apply failed.` and ends with `Changed so far: ...`.
pub fn human(report: &ApplyReport, plan: &Plan, color: bool, checks: &[CheckResult]) -> String {
    let (added, changed, destroyed) = report.counts();
    let counts = format!("{added} added, {changed} changed, {destroyed} destroyed.");
    let is_check = |s: &StepResult| plan.change(&s.address).is_none();
    // The last result per check address, for checks that are steps of this apply.
    let mut passed: Vec<&CheckResult> = Vec::new();
    for s in report.steps.iter().filter(|s| is_check(s)) {
        if let Some(r) = checks.iter().rev().find(|c| c.address == s.address)
            && r.status == CheckStatus::Pass
            && matches!(s.status, StepStatus::Applied { .. })
        {
            passed.push(r);
        }
    }
    let mut checks_section = String::new();
    if !passed.is_empty() {
        checks_section.push_str("Checks after apply:\n");
        for r in &passed {
            checks_section.push_str(&super::plan::check_lines(r, color));
        }
        checks_section.push('\n');
    }

    let title = operation_title(plan);
    if report.is_success() {
        let summary = if plan.mode == PlanMode::Destroy {
            format!("Destroy complete! Resources: {destroyed} destroyed.")
        } else {
            format!("Apply complete! Resources: {counts}")
        };
        return format!("{checks_section}{}\n", paint(SUCCESS, &summary, color));
    }

    let mut out = format!("{}\n", paint(ERROR, &format!("{title} failed."), color));
    let applied: Vec<&StepResult> = report
        .steps
        .iter()
        .filter(|s| !is_check(s) && matches!(s.status, StepStatus::Applied { .. }))
        .collect();
    if !applied.is_empty() {
        out.push_str("\nChanged:\n");
        for s in applied {
            let StepStatus::Applied { elapsed_seconds } = s.status else {
                continue;
            };
            out.push_str(&format!(
                "{} {}: {} after {}\n",
                symbol(s.action, color),
                paint(BOLD, &s.address.to_string(), color),
                past(s.action),
                duration(elapsed_seconds)
            ));
        }
    }
    let failed: Vec<&StepResult> = report.failed().collect();
    if !failed.is_empty() {
        out.push_str("\nFailed:\n");
        for s in failed {
            let StepStatus::Failed { diagnostics } = &s.status else {
                continue;
            };
            let what = if is_check(s) {
                "check".to_owned()
            } else {
                s.action.to_string()
            };
            out.push_str(&format!(
                "  {} {} ({what})\n",
                paint(DELETE, "✗", color),
                paint(BOLD, &s.address.to_string(), color),
            ));
            for d in diagnostics {
                let (sev, style) = match d.severity {
                    Severity::Error => ("error", DELETE),
                    Severity::Warning => ("warning", UPDATE),
                };
                out.push_str(&format!(
                    "      {}: {}\n",
                    paint(style, &format!("{sev}[{}]", d.code), color),
                    indent_rest(&d.message, 8)
                ));
                if let Some(hint) = &d.hint {
                    out.push_str(&format!("        hint: {}\n", indent_rest(hint, 14)));
                }
            }
        }
    }
    let skipped: Vec<&StepResult> = report.skipped().collect();
    if !skipped.is_empty() {
        out.push_str("\nSkipped:\n");
        for s in skipped {
            let StepStatus::Skipped { reason } = &s.status else {
                continue;
            };
            out.push_str(&format!(
                "  {}: not {} because {reason}\n",
                paint(BOLD, &s.address.to_string(), color),
                if is_check(s) {
                    "checked"
                } else {
                    past(s.action)
                }
            ));
        }
    }
    if !checks_section.is_empty() {
        out.push('\n');
        out.push_str(&checks_section);
    } else {
        out.push('\n');
    }
    out.push_str(&format!("Changed so far: {counts}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::fixtures;
    use arcplan_engine::address::{Address, ResourceType};
    use arcplan_engine::diag::Diagnostic;

    fn step(t: ResourceType, name: &str, action: Action, status: StepStatus) -> StepResult {
        StepResult {
            address: Address::new(t, name),
            action,
            status,
        }
    }

    fn applied(s: f64) -> StepStatus {
        StepStatus::Applied { elapsed_seconds: s }
    }

    fn connected() -> CheckResult {
        CheckResult {
            address: Address::new(arcplan_providers::kinds::CONNECTIVITY, "mynewcluster"),
            status: CheckStatus::Pass,
            summary: "Connected: agent 1.21.10, Kubernetes v1.30.6, 3 nodes, 12 cores".into(),
            fix: None,
            details: None,
            depends_on: vec![],
            desired: None,
        }
    }

    fn success() -> ApplyReport {
        ApplyReport {
            steps: vec![
                step(
                    arcplan_providers::kinds::RESOURCE_PROVIDER,
                    "Microsoft.Kubernetes",
                    Action::NoOp,
                    StepStatus::Unchanged,
                ),
                step(
                    arcplan_providers::kinds::RESOURCE_PROVIDER,
                    "Microsoft.KubernetesConfiguration",
                    Action::Create,
                    applied(41.0),
                ),
                step(
                    arcplan_providers::kinds::RESOURCE_GROUP,
                    "rg-arc",
                    Action::Create,
                    applied(2.2),
                ),
                step(
                    arcplan_providers::kinds::ONBOARDING_KEY,
                    "mynewcluster",
                    Action::Create,
                    applied(6.0),
                ),
                step(
                    arcplan_providers::kinds::CONNECTED_CLUSTER,
                    "mynewcluster",
                    Action::Create,
                    applied(31.0),
                ),
                step(
                    arcplan_providers::kinds::ARC_AGENTS,
                    "mynewcluster",
                    Action::Create,
                    applied(250.0),
                ),
                step(
                    arcplan_providers::kinds::CONNECTIVITY,
                    "mynewcluster",
                    Action::Read,
                    applied(12.0),
                ),
            ],
        }
    }

    fn failure() -> ApplyReport {
        ApplyReport {
            steps: vec![
                step(arcplan_providers::kinds::RESOURCE_PROVIDER, "Microsoft.Kubernetes", Action::NoOp, StepStatus::Unchanged),
                step(arcplan_providers::kinds::RESOURCE_PROVIDER, "Microsoft.KubernetesConfiguration", Action::Create, applied(41.0)),
                step(arcplan_providers::kinds::RESOURCE_GROUP, "rg-arc", Action::Create, applied(2.2)),
                step(arcplan_providers::kinds::ONBOARDING_KEY, "mynewcluster", Action::Create, applied(6.0)),
                step(
                    arcplan_providers::kinds::CONNECTED_CLUSTER,
                    "mynewcluster",
                    Action::Create,
                    StepStatus::Failed {
                        diagnostics: vec![
                            Diagnostic::error(
                                "arm-request-failed",
                                "PUT connectedClusters/mynewcluster failed: 403 AuthorizationFailed: the client does not have authorization to perform action 'Microsoft.Kubernetes/connectedClusters/write' (request id 6f1c2a9e-0000-4b7e-9c1d-2f0e5a7b8c9d)",
                            )
                            .with_address("arc.connectedCluster.mynewcluster")
                            .with_hint("grant the role \"Kubernetes Cluster - Azure Arc Onboarding\" on rg-arc, then run apply again"),
                            Diagnostic::warning("arm-retry", "the request was retried 2 times after 429 Too Many Requests"),
                        ],
                    },
                ),
                step(
                    arcplan_providers::kinds::ARC_AGENTS,
                    "mynewcluster",
                    Action::Create,
                    StepStatus::Skipped { reason: "arc.connectedCluster.mynewcluster failed".into() },
                ),
                step(
                    arcplan_providers::kinds::CONNECTIVITY,
                    "mynewcluster",
                    Action::Read,
                    StepStatus::Skipped { reason: "k8s.arcAgents.mynewcluster failed".into() },
                ),
            ],
        }
    }

    #[test]
    fn golden_reports() {
        let plan = fixtures::onboarding();
        let ok = human(&success(), &plan, false, &[connected()]);
        assert!(ok.ends_with("Apply complete! Resources: 5 added, 0 changed, 0 destroyed.\n"));
        fixtures::snapshot("report_success.txt", &ok);
        let failed = human(&failure(), &plan, false, &[]);
        assert!(failed.starts_with("Apply failed.\n"));
        assert!(failed.ends_with("Changed so far: 3 added, 0 changed, 0 destroyed.\n"));
        fixtures::snapshot("report_failed.txt", &failed);
        assert!(!ok.contains('\x1b') && !failed.contains('\x1b'));
        assert!(human(&failure(), &plan, true, &[]).contains('\x1b'));
    }

    #[test]
    fn a_destroy_asks_and_ends_in_destroy_words() {
        let plan = fixtures::destroy();
        let report = ApplyReport {
            steps: plan
                .changes
                .iter()
                .map(|c| StepResult {
                    address: c.address.clone(),
                    action: c.action,
                    status: applied(1.0),
                })
                .collect(),
        };
        let text = human(&report, &plan, false, &[]);
        assert!(
            text.ends_with("Destroy complete! Resources: 4 destroyed.\n"),
            "{text}"
        );
        assert!(!text.contains("Apply"), "{text}");
        let mut failed = report.clone();
        failed.steps[0].status = StepStatus::Failed {
            diagnostics: vec![],
        };
        assert!(human(&failed, &plan, false, &[]).starts_with("Destroy failed.\n"));
        assert!(approval_prompt(true).starts_with("Do you really want to destroy all resources?"));
        assert!(!approval_prompt(true).contains("these actions"));
        assert!(approval_prompt(false).starts_with("Do you want to perform these actions?"));
        assert_eq!(operation_title(&plan), "Destroy");
        assert_eq!(operation_title(&fixtures::onboarding()), "Apply");
    }

    #[test]
    fn a_failed_check_is_reported_with_its_fix() {
        let plan = fixtures::onboarding();
        let mut report = success();
        report.steps[6].status = StepStatus::Failed {
            diagnostics: vec![
                Diagnostic::error("check-failed", "the agents did not connect within 15m")
                    .with_hint("kubectl -n azure-arc get pods"),
            ],
        };
        let text = human(&report, &plan, false, &[]);
        assert!(text.contains("  ✗ arc.connectivity.mynewcluster (check)\n      error[check-failed]: the agents did not connect within 15m\n        hint: kubectl -n azure-arc get pods\n"), "{text}");
        assert!(text.ends_with("Changed so far: 5 added, 0 changed, 0 destroyed.\n"));
    }
}
