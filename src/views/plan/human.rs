//! The plan for a terminal, like Terraform's.

use super::diff::resource_lines;
use super::{BOLD, CREATE, DELETE, UPDATE, cannot_apply, indent_rest, paint, summary_line};
use crate::cli::Invocation;
use arcplan_engine::plan::{Change, CheckResult, CheckStatus, Plan, PlanMode};

/// The plan for a terminal, like Terraform's: every change with its attributes, the checks,
/// and the summary line. No ANSI escapes at all unless `color`. A command it suggests carries
/// the file and target of `run`.
pub fn human(plan: &Plan, color: bool, run: &Invocation) -> String {
    let mut out = String::new();
    let changed: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.action.is_change())
        .collect();
    let drift = drift_section(plan, color);
    out.push_str(&drift);
    if changed.is_empty() && !drift.is_empty() {
        out.push_str(&format!(
            "This is a refresh-only plan: arcplan changes nothing. Run `{}` to undo these changes, or change the configuration to keep them.\n",
            run.command("apply", &[])
        ));
    } else if changed.is_empty() {
        out.push_str("No changes. Live state matches the configuration.\n");
    } else {
        out.push_str("arcplan will perform the following actions:\n");
        for c in &changed {
            out.push('\n');
            for line in resource_lines(c, color) {
                out.push_str(&line.human(color));
                out.push('\n');
            }
        }
    }
    let elsewhere = super::owned_elsewhere(plan);
    if !elsewhere.is_empty() {
        out.push_str("\nChanges other runs own (this run waits for them during apply):\n");
        for line in &elsewhere {
            out.push_str(&format!("  {line}\n"));
        }
    }
    if !plan.checks.is_empty() {
        out.push_str("\nChecks:\n");
        for check in &plan.checks {
            out.push_str(&check_lines(check, color));
        }
    }
    if !changed.is_empty() {
        out.push('\n');
        let line = summary_line(plan.summary());
        let rest = line.strip_prefix("Plan:").unwrap_or(&line);
        out.push_str(&format!("{}{rest}\n", paint(BOLD, "Plan:", color)));
    }
    if let Some(why) = cannot_apply(plan) {
        out.push('\n');
        out.push_str(&paint(crate::views::ERROR, &why, color));
        out.push('\n');
    }
    out
}

/// `Objects have changed outside of arcplan:` and one line per drifted resource (what a normal
/// plan would do, and what differs), or nothing when nothing drifted.
pub(crate) fn drift_section(plan: &Plan, color: bool) -> String {
    let drifted: Vec<&Change> = plan.drifted().collect();
    if drifted.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        if drifted
            .iter()
            .all(|c| c.drift.as_ref().is_some_and(|d| d.attributed))
        {
            "Objects have changed outside of arcplan:\n\n"
        } else {
            "Objects have changed outside of arcplan (or, where arcplan keeps no record of its last apply, the configuration changed):\n\n"
        },
    );
    for c in drifted {
        let Some(d) = &c.drift else { continue };
        out.push_str(&format!(
            "  {} {} ({}): {}\n",
            paint(UPDATE, d.action.symbol(), color),
            paint(BOLD, &c.address.to_string(), color),
            if d.attributed { "drift" } else { "differs" },
            indent_rest(&d.message, 6)
        ));
    }
    out.push_str(if plan.mode == PlanMode::RefreshOnly {
        "\n"
    } else {
        "\nThe configuration still says what arcplan last applied; the plan below undoes these changes.\n\n"
    });
    out
}

/// One check as `  ✓ ADDRESS: summary` plus, for a failure, an indented `fix:` line.
pub(crate) fn check_lines(check: &CheckResult, color: bool) -> String {
    let (mark, style) = match check.status {
        CheckStatus::Pass => ("✓", CREATE),
        CheckStatus::Fail => ("✗", DELETE),
        CheckStatus::Pending => ("…", UPDATE),
    };
    let mut s = format!(
        "  {} {}: {}\n",
        paint(style, mark, color),
        paint(BOLD, &check.address.to_string(), color),
        check.summary
    );
    if check.status == CheckStatus::Fail
        && let Some(fix) = &check.fix
    {
        s.push_str(&format!("      fix: {}\n", indent_rest(fix, 11)));
    }
    s
}
