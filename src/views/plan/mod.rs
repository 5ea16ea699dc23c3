//! The plan, for people (Terraform-like text), for pull requests (Markdown) and for tools (a
//! versioned JSON document modelled on `terraform show -json`).
//!
//! Every rendering is a pure function of the [`Plan`]. None of them ever shows the value of an
//! attribute whose JSON pointer is in `sensitive_paths` (or below one): the planner already
//! redacts those values, and the views do not rely on it.

mod diff;
#[cfg(test)]
pub(crate) mod fixtures;
mod human;
mod json;
mod markdown;
#[cfg(test)]
mod tests;

pub use human::human;
pub use json::json;
pub(crate) use markdown::cluster_of;
pub use markdown::{DEFAULT_MAX_BYTES, MarkdownOptions, markdown};

use anstyle::{AnsiColor, Style};
use arcplan_engine::plan::{Action, CheckResult, CheckStatus, Plan, Summary};

/// Green, for creations.
pub const CREATE: Style = AnsiColor::Green.on_default();
/// Yellow, for in-place updates.
pub const UPDATE: Style = AnsiColor::Yellow.on_default();
/// Red, for deletions.
pub const DELETE: Style = AnsiColor::Red.on_default();
/// Cyan, for reads.
pub const READ: Style = AnsiColor::Cyan.on_default();
/// Bold, for addresses.
pub const BOLD: Style = Style::new().bold();

/// Wraps `text` in `style` when colour is on.
pub(crate) fn paint(style: Style, text: &str, color: bool) -> String {
    if color {
        format!("{style}{text}{style:#}")
    } else {
        text.to_owned()
    }
}

/// "1 thing" / "2 things".
pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The summary line, `Plan: X to add, Y to change, Z to destroy.`.
pub fn summary_line(s: Summary) -> String {
    format!(
        "Plan: {} to add, {} to change, {} to destroy.",
        s.add, s.change, s.destroy
    )
}

/// The plan for a terminal, like Terraform's: every change with its attributes, the checks,
/// and the summary line. No ANSI escapes at all unless `color`.
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

/// Continuation lines of a multi-line text, indented to `n` columns.
pub(crate) fn indent_rest(text: &str, n: usize) -> String {
    text.trim_end()
        .replace('\n', &format!("\n{}", " ".repeat(n)))
}

/// The sentence saying why the plan cannot be applied, when a check failed.
fn cannot_apply(plan: &Plan) -> Option<String> {
    let failed: Vec<String> = plan
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .map(|c| c.address.to_string())
        .collect();
    if failed.is_empty() {
        return None;
    }
    Some(format!(
        "This plan cannot be applied: {} ({}). Apply the fix given for each, then run plan again.",
        plural(failed.len(), "check failed", "checks failed"),
        failed.join(", ")
    ))
}

/// The emoji a pull-request comment shows for an action.
fn emoji(action: Action) -> &'static str {
    match action {
        Action::Create => "🟢",
        Action::Update => "🟡",
        Action::Replace => "🟠",
        Action::Delete => "🔴",
        Action::Read => "🔵",
        Action::NoOp => "⚪",
    }
}

/// The words after the address in `# ADDRESS will be created`.
fn verb(action: Action) -> &'static str {
    match action {
        Action::Create => "will be created",
        Action::Update => "will be updated in place",
        Action::Replace => "must be replaced",
        Action::Delete => "will be destroyed",
        Action::Read => "will be read",
        Action::NoOp => "is unchanged",
    }
}

/// A JSON pointer segment for a key.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn unescape(seg: &str) -> String {
    seg.replace("~1", "/").replace("~0", "~")
}

/// True when `ptr` is `base` or inside it.
fn at_or_under(ptr: &str, base: &str) -> bool {
    ptr == base || (ptr.starts_with(base) && ptr[base.len()..].starts_with('/'))
}
