//! The plan for a pull-request comment: a title with the summary, a table of changes per
//! cluster, the checks needing attention, then each resource's diff inside `<details>`.
//!
//! The document stays under a byte budget ([`MarkdownOptions::max_bytes`], by default
//! [`DEFAULT_MAX_BYTES`], which leaves room under GitHub's 65,536-character comment limit for a
//! wrapper). When the whole plan does not fit, whole blocks are left out from the end (the
//! per-resource details first, then check lines, then table rows; never part of a block, so
//! the markup stays balanced), and a note says how many were left out and where the full plan
//! is. Details are ordered by risk (destroy, replace, update, create), so what is dropped first
//! is what matters least.

use super::diff::{Line, resource_lines};
use super::{cannot_apply, plural, summary_line, verb};
use crate::cli::Invocation;
use arcplan_engine::plan::{Action, Change, CheckResult, CheckStatus, Plan};
use arcplan_providers::kinds::cluster_of;
use std::collections::BTreeMap;

/// The default budget: GitHub's 65,536 less headroom for a comment wrapper (a sticky-comment
/// action's header, a link to the run).
pub const DEFAULT_MAX_BYTES: usize = 60_000;

/// Pending checks listed one by one up to this many; more are counted per type.
const PENDING_LINES: usize = 5;

/// How the Markdown is shaped.
#[derive(Debug, Clone)]
pub struct MarkdownOptions {
    /// The most bytes the document may take.
    pub max_bytes: usize,
    /// The saved plan file, named in the note when something is left out.
    pub plan_file: Option<String>,
    /// The file and target of the run, for the command the note suggests.
    pub run: Invocation,
}

impl Default for MarkdownOptions {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            plan_file: None,
            run: Invocation::default(),
        }
    }
}

/// Counts for one table row.
#[derive(Default)]
struct Row {
    add: usize,
    change: usize,
    destroy: usize,
    failed: usize,
    pending: usize,
    passed: usize,
}

impl Row {
    fn count(&mut self, action: Action) {
        match action {
            Action::Create => self.add += 1,
            Action::Update => self.change += 1,
            Action::Replace => {
                self.add += 1;
                self.destroy += 1;
            }
            Action::Delete => self.destroy += 1,
            Action::NoOp | Action::Read => {}
        }
    }

    fn checks(&self) -> String {
        let mut parts = Vec::new();
        if self.failed > 0 {
            parts.push(format!("❌ {} failed", self.failed));
        }
        if self.pending > 0 {
            parts.push(format!("⏳ {} pending", self.pending));
        }
        if self.passed > 0 {
            parts.push(format!("✅ {} passed", self.passed));
        }
        if parts.is_empty() {
            "—".into()
        } else {
            parts.join(" · ")
        }
    }

    fn has_changes(&self) -> bool {
        self.add + self.change + self.destroy > 0
    }
}

/// The Markdown for a pull-request comment, within `opts.max_bytes` (see the module docs).
pub fn markdown(plan: &Plan, opts: &MarkdownOptions) -> String {
    let changed: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.action.is_change())
        .collect();
    let drifted = plan.drifted().count();
    let title = if changed.is_empty() && drifted > 0 {
        format!("{drifted} changed outside arcplan (refresh-only)")
    } else if changed.is_empty() {
        "No changes. Live state matches the configuration.".to_owned()
    } else {
        summary_line(plan.summary())
    };
    let mut head = format!(
        "### arcplan · stack `{}` · {title}\n",
        plan.stack.replace('`', "'")
    );
    if let Some(why) = cannot_apply(plan) {
        head.push_str(&format!("\n> [!CAUTION]\n> **{}**\n", md_escape(&why)));
    }
    let elsewhere = super::owned_elsewhere(plan);
    if !elsewhere.is_empty() {
        head.push_str("\n> [!NOTE]\n> **Changes other runs own** (this run waits for them):\n");
        for line in &elsewhere {
            head.push_str(&format!("> - {}\n", md_escape(line)));
        }
    }
    if drifted > 0 {
        head.push_str("\n> [!NOTE]\n> **Changed outside arcplan (drift):**\n");
        for c in plan.drifted() {
            let message = c.drift.as_ref().map_or("", |d| d.message.as_str());
            head.push_str(&format!("> - `{}`: {}\n", c.address, md_escape(message)));
        }
    }

    // The table: one row per cluster, and one for what they share.
    let mut rows: BTreeMap<Option<&str>, Row> = BTreeMap::new();
    for c in &plan.changes {
        rows.entry(cluster_of(&c.address))
            .or_default()
            .count(c.action);
    }
    for c in &plan.checks {
        let row = rows.entry(cluster_of(&c.address)).or_default();
        match c.status {
            CheckStatus::Fail => row.failed += 1,
            CheckStatus::Pending => row.pending += 1,
            CheckStatus::Pass => row.passed += 1,
        }
    }
    let clusters = rows.keys().filter(|k| k.is_some()).count();
    let mut table_head = String::new();
    let mut table_rows = Vec::new();
    if clusters > 0 || !changed.is_empty() {
        if clusters > 0 {
            let with = rows
                .iter()
                .filter(|(k, r)| k.is_some() && r.has_changes())
                .count();
            table_head.push_str(&format!(
                "\n**{}**: {with} with changes, {} unchanged.\n",
                plural(clusters, "cluster", "clusters"),
                clusters - with
            ));
        }
        table_head
            .push_str("\n| Cluster | Add | Change | Destroy | Checks |\n|---|--:|--:|--:|---|\n");
        // Clusters by name, then what they share.
        let mut ordered: Vec<(&Option<&str>, &Row)> =
            rows.iter().filter(|(k, _)| k.is_some()).collect();
        ordered.extend(rows.iter().filter(|(k, _)| k.is_none()));
        for (name, r) in ordered {
            let label = match name {
                Some(n) => format!("<code>{}</code>", md_escape(n)),
                None => "*shared* (subscription, resource groups, access)".into(),
            };
            table_rows.push(format!(
                "| {label} | {} | {} | {} | {} |\n",
                r.add,
                r.change,
                r.destroy,
                r.checks()
            ));
        }
    }

    // The checks needing attention.
    let attention: Vec<&CheckResult> = plan
        .checks
        .iter()
        .filter(|c| c.status != CheckStatus::Pass)
        .collect();
    let passed = plan.checks.len() - attention.len();
    let mut check_lines = Vec::new();
    let pending: Vec<&&CheckResult> = attention
        .iter()
        .filter(|c| c.status == CheckStatus::Pending)
        .collect();
    for c in attention.iter().filter(|c| c.status == CheckStatus::Fail) {
        let mut s = format!("- ❌ failed: `{}`: {}\n", c.address, md_escape(&c.summary));
        if let Some(fix) = &c.fix {
            let fix = if fix.contains(['`', '\n']) {
                md_escape(fix)
            } else {
                format!("`{fix}`")
            };
            s.push_str(&format!("  - **Fix:** {fix}\n"));
        }
        check_lines.push(s);
    }
    if pending.len() <= PENDING_LINES {
        for c in &pending {
            check_lines.push(format!(
                "- ⏳ pending: `{}`: {}\n",
                c.address,
                md_escape(&c.summary)
            ));
        }
    } else {
        let mut by_type: BTreeMap<&str, usize> = BTreeMap::new();
        for c in &pending {
            *by_type.entry(c.address.rtype.as_str()).or_default() += 1;
        }
        let kinds: Vec<String> = by_type
            .iter()
            .map(|(t, n)| format!("`{t}` × {n}"))
            .collect();
        check_lines.push(format!(
            "- ⏳ {} pending, evaluated during apply: {}\n",
            plural(pending.len(), "check", "checks"),
            kinds.join(", ")
        ));
    }
    if passed > 0 {
        check_lines.push(format!(
            "- ✅ {} passed\n",
            plural(passed, "check", "checks")
        ));
    }
    let checks_head = if plan.checks.is_empty() {
        ""
    } else {
        "\n#### Checks\n\n"
    };

    // The details, riskiest first, then by cluster and address.
    let rank = |a: Action| match a {
        Action::Delete => 0,
        Action::Replace => 1,
        Action::Update => 2,
        _ => 3,
    };
    let mut ordered = changed.clone();
    ordered.sort_by(|a, b| {
        (
            rank(a.action),
            cluster_of(&a.address),
            a.address.to_string(),
        )
            .cmp(&(
                rank(b.action),
                cluster_of(&b.address),
                b.address.to_string(),
            ))
    });
    let details: Vec<(String, String)> = ordered
        .iter()
        .map(|c| (c.address.to_string(), detail(c)))
        .collect();
    let details_head = if details.is_empty() {
        ""
    } else {
        "\n#### Details\n"
    };

    // Fit: the head always; then table rows, check lines and details while they fit, leaving
    // room for the note (sized for the worst case).
    let longest = details.iter().map(|(a, _)| a.len()).max().unwrap_or(0);
    let reserve = note(
        usize::MAX,
        usize::MAX,
        usize::MAX,
        usize::MAX,
        &"x".repeat(longest),
        opts,
    )
    .len()
        + more_row(usize::MAX).len();
    let fixed = head.len() + table_head.len() + checks_head.len() + details_head.len();
    let whole: usize = fixed
        + [&table_rows, &check_lines]
            .iter()
            .flat_map(|v| v.iter())
            .map(String::len)
            .sum::<usize>()
        + details.iter().map(|(_, d)| d.len()).sum::<usize>();
    // Everything fits: no room is kept for a note.
    let mut used = if whole <= opts.max_bytes {
        fixed
    } else {
        fixed + reserve
    };
    let mut take = |parts: &[String]| -> usize {
        let mut n = 0;
        for p in parts {
            if used + p.len() > opts.max_bytes {
                break;
            }
            used += p.len();
            n += 1;
        }
        n
    };
    let rows_shown = take(&table_rows);
    let checks_shown = if rows_shown == table_rows.len() {
        take(&check_lines)
    } else {
        0
    };
    let bodies: Vec<String> = details.iter().map(|(_, d)| d.clone()).collect();
    let details_shown = if checks_shown == check_lines.len() {
        take(&bodies)
    } else {
        0
    };

    let mut out = head;
    out.push_str(&table_head);
    for r in &table_rows[..rows_shown] {
        out.push_str(r);
    }
    if rows_shown < table_rows.len() {
        out.push_str(&more_row(table_rows.len() - rows_shown));
    }
    out.push_str(checks_head);
    for c in &check_lines[..checks_shown] {
        out.push_str(c);
    }
    out.push_str(details_head);
    let left_out = details.len() - details_shown;
    if left_out > 0 || checks_shown < check_lines.len() {
        let first = details.get(details_shown).map_or("", |(a, _)| a.as_str());
        out.push_str(&note(
            left_out,
            details.len(),
            check_lines.len() - checks_shown,
            table_rows.len() - rows_shown,
            first,
            opts,
        ));
    }
    for d in &bodies[..details_shown] {
        out.push_str(d);
    }
    out
}

/// One resource's `<details>` block.
fn detail(c: &Change) -> String {
    let body: Vec<String> = resource_lines(c, false)
        .iter()
        .map(Line::diff_marked)
        .collect();
    let body = body.join("\n");
    let fence = "`".repeat(longest_backtick_run(&body).max(2) + 1);
    format!(
        "\n<details><summary>{} <code>{}</code> {}</summary>\n\n{fence}diff\n{body}\n{fence}\n\n</details>\n",
        emoji(c.action),
        html_escape(&c.address.to_string()),
        verb(c.action),
    )
}

/// The table row standing for the rows left out.
fn more_row(n: usize) -> String {
    format!(
        "| *… and {} (see the full plan)* | | | | |\n",
        plural(n, "more row", "more rows")
    )
}

/// What was left out, and where the full plan is.
fn note(
    details: usize,
    total: usize,
    checks: usize,
    rows: usize,
    first: &str,
    opts: &MarkdownOptions,
) -> String {
    let mut what = Vec::new();
    if details > 0 {
        let from = if first.is_empty() {
            String::new()
        } else {
            format!(" (from <code>{}</code> on)", html_escape(first))
        };
        what.push(format!(
            "the details of {details} of {total} resources{from}"
        ));
    }
    if checks > 0 {
        what.push(plural(checks, "check line", "check lines"));
    }
    if rows > 0 {
        what.push(plural(rows, "table row", "table rows"));
    }
    let full = match &opts.plan_file {
        Some(p) => format!(
            "the full plan is in the plan file <code>{0}</code> (the run's artifact): `arcplan show {0}` prints it",
            html_escape(p).replace('`', "'")
        ),
        None => format!(
            "for the full plan, save it with {} (keep PLANFILE as the run's artifact) and print it with `arcplan show PLANFILE`",
            code_span(&opts.run.command("plan", &["--out", "PLANFILE"]))
        ),
    };
    format!(
        "\n> [!NOTE]\n> Left out to stay under {} bytes: {}; {full}.\n",
        opts.max_bytes,
        what.join(", ")
    )
}

/// `s` as a Markdown code span, verbatim (its fence longer than any run of backticks in it).
fn code_span(s: &str) -> String {
    match longest_backtick_run(s) {
        0 => format!("`{s}`"),
        n => {
            let fence = "`".repeat(n + 1);
            format!("{fence} {s} {fence}")
        }
    }
}

fn longest_backtick_run(s: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for ch in s.chars() {
        if ch == '`' {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

fn md_escape(s: &str) -> String {
    html_escape(s).replace('|', "\\|").replace('\n', "<br>")
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
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
