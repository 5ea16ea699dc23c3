//! The plan, for people (Terraform-like text), for pull requests (Markdown) and for tools (a
//! versioned JSON document modelled on `terraform show -json`).
//!
//! Every rendering is a pure function of the [`Plan`]. None of them ever shows the value of an
//! attribute whose JSON pointer is in `sensitive_paths` (or below one): the planner already
//! redacts those values, and the views do not rely on it.

mod diff;
mod human;
mod json;
mod markdown;
mod pointer;
#[cfg(test)]
mod tests;

pub(crate) use human::check_lines;
pub use human::human;
pub use json::json;
pub use markdown::{DEFAULT_MAX_BYTES, MarkdownOptions, markdown};

use anstyle::{AnsiColor, Style};
use arcplan_engine::plan::{Action, CheckStatus, Plan, Summary};
#[cfg(test)]
use pointer::at_or_under;

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

/// The changes of a sharded plan that other shards own, one line each: `ADDRESS: shard 1/4
/// will create it`.
fn owned_elsewhere(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .filter_map(|c| {
            let o = c.owner.as_ref()?;
            Some(format!(
                "{}: {} {} it",
                c.address,
                o.shard,
                match o.action {
                    Action::Create => "creates",
                    Action::Update => "updates",
                    Action::Replace => "replaces",
                    Action::Delete => "deletes",
                    Action::Read | Action::NoOp => "reads",
                }
            ))
        })
        .collect()
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
