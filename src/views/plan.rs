//! The plan, for people (Terraform-like text), for pull requests (Markdown) and for tools (a
//! versioned JSON document modelled on `terraform show -json`).
//!
//! Every rendering is a pure function of the [`Plan`]. None of them ever shows the value of an
//! attribute whose JSON pointer is in `sensitive_paths` (or below one): the planner already
//! redacts those values, and the views do not rely on it.
// The commands call these as they are wired in; until then only the tests do.

use anstyle::{AnsiColor, Style};
use arcplan_engine::plan::{Action, Change, CheckResult, CheckStatus, Plan, ReasonCode, Summary};
use serde_json::{Map, Value, json};
use similar::{ChangeTag, TextDiff};
use std::collections::BTreeSet;

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

/// What a value whose pointer is sensitive shows instead of itself.
const SENSITIVE: &str = "(sensitive value)";
/// What a value known only after apply shows.
const UNKNOWN: &str = "(known after apply)";
/// Single-line strings longer than this are abbreviated in the middle.
const LONG: usize = 64;

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
pub fn human(plan: &Plan, color: bool) -> String {
    let mut out = String::new();
    let changed: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.action.is_change())
        .collect();
    if changed.is_empty() {
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
        out.push_str(&paint(super::ERROR, &why, color));
        out.push('\n');
    }
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

/// The Markdown for a pull-request comment: the summary as a title, a table of changes, the
/// checks needing attention, and each resource's diff inside `<details>`.
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let changed: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.action.is_change())
        .collect();
    let title = if changed.is_empty() {
        "No changes. Live state matches the configuration.".to_owned()
    } else {
        summary_line(plan.summary())
    };
    out.push_str(&format!(
        "### arcplan · stack `{}` · {title}\n",
        plan.stack.replace('`', "'")
    ));
    if let Some(why) = cannot_apply(plan) {
        out.push_str(&format!("\n> [!CAUTION]\n> **{}**\n", md_escape(&why)));
    }
    if !changed.is_empty() {
        out.push_str("\n| | Action | Resource | Reason |\n|---|---|---|---|\n");
        for c in &changed {
            let mut reason = c
                .reason
                .as_ref()
                .map(|r| md_escape(&r.message))
                .unwrap_or_default();
            if !c.cascades_to.is_empty() {
                if !reason.is_empty() {
                    reason.push_str("; ");
                }
                reason.push_str(&format!(
                    "also affects {}",
                    c.cascades_to
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            out.push_str(&format!(
                "| {} | {} | `{}` | {} |\n",
                emoji(c.action),
                c.action,
                c.address,
                reason
            ));
        }
    }
    let attention: Vec<&CheckResult> = plan
        .checks
        .iter()
        .filter(|c| c.status != CheckStatus::Pass)
        .collect();
    let passed = plan.checks.len() - attention.len();
    if !plan.checks.is_empty() {
        out.push_str("\n#### Checks\n\n");
        for c in &attention {
            let mark = if c.status == CheckStatus::Fail {
                "❌ failed"
            } else {
                "⏳ pending"
            };
            out.push_str(&format!(
                "- {mark}: `{}`: {}\n",
                c.address,
                md_escape(&c.summary)
            ));
            if c.status == CheckStatus::Fail
                && let Some(fix) = &c.fix
            {
                let fix = if fix.contains(['`', '\n']) {
                    md_escape(fix)
                } else {
                    format!("`{fix}`")
                };
                out.push_str(&format!("  - **Fix:** {fix}\n"));
            }
        }
        if passed > 0 {
            out.push_str(&format!(
                "- ✅ {} passed\n",
                plural(passed, "check", "checks")
            ));
        }
    }
    if !changed.is_empty() {
        out.push_str("\n#### Details\n");
        for c in &changed {
            let body: Vec<String> = resource_lines(c, false)
                .iter()
                .map(Line::diff_marked)
                .collect();
            let body = body.join("\n");
            let fence = "`".repeat(longest_backtick_run(&body).max(2) + 1);
            out.push_str(&format!(
                "\n<details><summary>{} <code>{}</code> {}</summary>\n\n{fence}diff\n{body}\n{fence}\n\n</details>\n",
                emoji(c.action),
                html_escape(&c.address.to_string()),
                verb(c.action),
            ));
        }
    }
    out
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

// ---------------------------------------------------------------------------------------------
// The resource diff, as lines that render either for a terminal or as a ```diff block.

/// A symbol at the start of a diff line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sym {
    Create,
    Update,
    Delete,
    Replace,
    Read,
    /// A context line of a multi-line value (no symbol, but aligned as if there were one).
    Same,
}

impl Sym {
    fn of(action: Action) -> Sym {
        match action {
            Action::Create => Sym::Create,
            Action::Update => Sym::Update,
            Action::Replace => Sym::Replace,
            Action::Delete => Sym::Delete,
            Action::Read => Sym::Read,
            Action::NoOp => Sym::Same,
        }
    }

    fn text(self) -> &'static str {
        match self {
            Sym::Create => "+",
            Sym::Update => "~",
            Sym::Delete => "-",
            Sym::Replace => "-/+",
            Sym::Read => "<=",
            Sym::Same => " ",
        }
    }

    fn painted(self, color: bool) -> String {
        match self {
            Sym::Create => paint(CREATE, "+", color),
            Sym::Update => paint(UPDATE, "~", color),
            Sym::Delete => paint(DELETE, "-", color),
            Sym::Replace => format!(
                "{}/{}",
                paint(DELETE, "-", color),
                paint(CREATE, "+", color)
            ),
            Sym::Read => paint(READ, "<=", color),
            Sym::Same => " ".to_owned(),
        }
    }
}

/// One line of a resource's diff: the column of its symbol, the symbol, and the text after it.
#[derive(Debug, Clone)]
struct Line {
    col: usize,
    sym: Option<Sym>,
    body: String,
}

impl Line {
    fn comment(col: usize, body: String) -> Self {
        Line {
            col,
            sym: None,
            body,
        }
    }

    /// For a terminal.
    fn human(&self, color: bool) -> String {
        match self.sym {
            Some(s) => format!("{}{} {}", " ".repeat(self.col), s.painted(color), self.body),
            None => format!("{}{}", " ".repeat(self.col), self.body),
        }
    }

    /// For a ```diff block: the symbol moves to the first column (`~` becomes `!`, which
    /// GitHub highlights as a change), so the highlighter sees it; alignment is kept.
    fn diff_marked(&self) -> String {
        let marker = match self.sym {
            Some(Sym::Create) => '+',
            Some(Sym::Delete) => '-',
            Some(Sym::Update) => '!',
            _ => return self.human(false),
        };
        format!("{marker}{}{}", " ".repeat(self.col + 1), self.body)
    }
}

/// How a block of attributes is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every attribute of `after`, with `+`.
    Create,
    /// Every attribute of `before`, with `-`.
    Delete,
    /// Only what differs between `before` and `after`.
    Diff,
}

/// What follows `key = ` on an attribute line.
enum Shown {
    Text(String),
    /// A nested block: its lines, and what follows the closing brace.
    Block(Vec<Line>, &'static str),
    /// A heredoc: its lines.
    Heredoc(Vec<Line>),
}

struct Entry {
    sym: Sym,
    key: String,
    shown: Shown,
    comment: String,
}

/// The lines of one changed resource: the `#` comments, then the block.
fn resource_lines(c: &Change, color: bool) -> Vec<Line> {
    let r = Renderer { change: c };
    let addr = c.address.to_string();
    let mut lines = vec![Line::comment(
        2,
        format!("# {} {}", paint(BOLD, &addr, color), verb(c.action)),
    )];
    if let Some(reason) = &c.reason {
        lines.push(Line::comment(
            2,
            format!("# (because {})", reason.message.trim_end_matches('.')),
        ));
    }
    if !c.cascades_to.is_empty() {
        let list: Vec<String> = c.cascades_to.iter().map(ToString::to_string).collect();
        lines.push(Line::comment(
            2,
            format!("# (this also affects: {})", list.join(", ")),
        ));
    }
    let sym = Sym::of(c.action);
    lines.push(Line {
        col: 3 - sym.text().len(),
        sym: Some(sym),
        body: format!("{} {{", paint(BOLD, &addr, color)),
    });
    let (before, after, mode) = match c.action {
        Action::Create | Action::Read => (None, c.after.as_ref(), Mode::Create),
        Action::Delete => (c.before.as_ref(), None, Mode::Delete),
        _ => (c.before.as_ref(), c.after.as_ref(), Mode::Diff),
    };
    let whole = match mode {
        Mode::Delete => before,
        _ => after.or(before),
    };
    match (before.map(Value::as_object), after.map(Value::as_object)) {
        (Some(None), _) | (_, Some(None)) => {
            // Not an object: one pseudo-attribute with the whole value.
            let text = r.compact(whole.unwrap_or(&Value::Null), "");
            lines.push(Line {
                col: 6,
                sym: Some(if mode == Mode::Delete {
                    Sym::Delete
                } else {
                    Sym::Update
                }),
                body: format!("value = {text}"),
            });
        }
        (b, a) => {
            let empty = Map::new();
            let (entries, hidden) = r.entries(
                b.flatten().unwrap_or(&empty),
                a.flatten().unwrap_or(&empty),
                "",
                mode,
                6,
            );
            emit(&mut lines, entries, hidden, 6, "attribute", "attributes");
        }
    }
    lines.push(Line::comment(4, "}".into()));
    lines
}

/// Lays out entries at symbol column `col`, keys aligned, then the hidden count.
fn emit(
    out: &mut Vec<Line>,
    entries: Vec<Entry>,
    hidden: usize,
    col: usize,
    one: &str,
    many: &str,
) {
    let width = entries
        .iter()
        .map(|e| e.key.chars().count())
        .max()
        .unwrap_or(0);
    for e in entries {
        let key = format!("{:<width$}", e.key);
        match e.shown {
            Shown::Text(t) => out.push(Line {
                col,
                sym: Some(e.sym),
                body: format!("{key} = {t}{}", e.comment),
            }),
            Shown::Block(children, after) => {
                out.push(Line {
                    col,
                    sym: Some(e.sym),
                    body: format!("{key} = {{{}", e.comment),
                });
                out.extend(children);
                out.push(Line::comment(col + 2, format!("}}{after}")));
            }
            Shown::Heredoc(children) => {
                out.push(Line {
                    col,
                    sym: Some(e.sym),
                    body: format!("{key} = <<-EOT{}", e.comment),
                });
                out.extend(children);
                out.push(Line::comment(col + 2, "EOT".into()));
            }
        }
    }
    if hidden > 0 {
        out.push(Line::comment(
            col + 2,
            format!(
                "# ({} hidden)",
                plural(
                    hidden,
                    &format!("unchanged {one}"),
                    &format!("unchanged {many}")
                )
            ),
        ));
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

/// How a key shows: bare when it is an identifier, quoted otherwise.
fn key_text(key: &str) -> String {
    let ident = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ident {
        key.to_owned()
    } else {
        serde_json::to_string(key).unwrap_or_default()
    }
}

/// Abbreviates a long opaque single-line string (a key, a certificate, a token) in the middle:
/// `MIICCgKCAgEA…(512 chars)…AAE=`. Paths and ARM ids (starting with `/`), URLs and text with
/// spaces are readable, and stay whole.
fn abbreviate(s: &str) -> String {
    let n = s.chars().count();
    if n <= LONG || s.starts_with('/') || s.contains("://") || s.contains(char::is_whitespace) {
        return s.to_owned();
    }
    let head: String = s.chars().take(12).collect();
    let tail: String = s.chars().skip(n - 4).collect();
    format!("{head}…({n} chars)…{tail}")
}

/// Renders a scalar (or a compact array or object) for a line.
fn scalar(v: &Value) -> String {
    fn shorten(v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(abbreviate(s)),
            Value::Array(a) => Value::Array(a.iter().map(shorten).collect()),
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), shorten(v))).collect())
            }
            other => other.clone(),
        }
    }
    serde_json::to_string(&shorten(v)).unwrap_or_default()
}

fn is_multiline(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str).is_some_and(|s| s.contains('\n'))
}

/// Where a value is absent or null, for diffing.
fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

struct Renderer<'a> {
    change: &'a Change,
}

impl Renderer<'_> {
    fn sensitive(&self, ptr: &str) -> bool {
        self.change
            .sensitive_paths
            .iter()
            .any(|p| at_or_under(ptr, p))
    }

    fn unknown(&self, ptr: &str) -> bool {
        self.change
            .after_unknown
            .iter()
            .any(|p| at_or_under(ptr, p))
    }

    fn forces(&self, ptr: &str) -> bool {
        self.change
            .replace_paths
            .iter()
            .any(|p| at_or_under(p, ptr))
    }

    /// A value in one line, with anything sensitive or unknown inside it masked.
    fn compact(&self, v: &Value, ptr: &str) -> String {
        if self.sensitive(ptr) {
            return SENSITIVE.to_owned();
        }
        let mut v = v.clone();
        let inner = |paths: &[String], marker: &str, v: &mut Value| {
            for p in paths {
                if p.len() > ptr.len()
                    && at_or_under(p, ptr)
                    && let Some(slot) = v.pointer_mut(&p[ptr.len()..])
                {
                    *slot = Value::String(marker.to_owned());
                }
            }
        };
        inner(&self.change.sensitive_paths, SENSITIVE, &mut v);
        inner(&self.change.after_unknown, UNKNOWN, &mut v);
        scalar(&v)
    }

    /// The keys of `before` and `after`, plus keys only an unknown pointer names.
    fn keys(
        &self,
        before: &Map<String, Value>,
        after: &Map<String, Value>,
        ptr: &str,
    ) -> BTreeSet<String> {
        let mut keys: BTreeSet<String> = before.keys().chain(after.keys()).cloned().collect();
        for u in &self.change.after_unknown {
            if u.len() > ptr.len() && at_or_under(u, ptr) {
                let rest = &u[ptr.len() + 1..];
                let seg = rest.split('/').next().unwrap_or(rest);
                keys.insert(unescape(seg));
            }
        }
        keys
    }

    /// The entries of one object, and how many were unchanged (hidden).
    fn entries(
        &self,
        before: &Map<String, Value>,
        after: &Map<String, Value>,
        ptr: &str,
        mode: Mode,
        col: usize,
    ) -> (Vec<Entry>, usize) {
        let mut entries = Vec::new();
        let mut hidden = 0;
        for key in self.keys(before, after, ptr) {
            let p = format!("{ptr}/{}", escape(&key));
            let b = present(before.get(&key));
            let a = present(after.get(&key));
            let unknown = mode != Mode::Delete && self.unknown(&p);
            let comment = if mode == Mode::Diff && self.forces(&p) {
                " # forces replacement".to_owned()
            } else {
                String::new()
            };
            let entry = |sym, shown| Entry {
                sym,
                key: key_text(&key),
                shown,
                comment: comment.clone(),
            };
            let side = match mode {
                Mode::Create => Some((Sym::Create, a)),
                Mode::Delete => Some((Sym::Delete, b)),
                Mode::Diff if b.is_none() => Some((Sym::Create, a)),
                Mode::Diff => None,
            };
            if let Some((sym, v)) = side {
                // One side only: the whole value with one symbol.
                if unknown {
                    entries.push(entry(sym, Shown::Text(UNKNOWN.into())));
                } else if let Some(v) = v {
                    entries.push(entry(sym, self.whole(v, &p, sym, col, false)));
                } else if sym == Sym::Create
                    && self.change.after_unknown.iter().any(|u| at_or_under(u, &p))
                {
                    entries.push(entry(sym, Shown::Text(UNKNOWN.into())));
                }
                continue;
            }
            let b = b.unwrap_or(&Value::Null);
            if !unknown && a == Some(b) {
                hidden += 1;
                continue;
            }
            if self.sensitive(&p) {
                let sym = if unknown || a.is_some() {
                    Sym::Update
                } else {
                    Sym::Delete
                };
                entries.push(entry(sym, Shown::Text(SENSITIVE.into())));
                continue;
            }
            let Some(a) = a.filter(|_| !unknown) else {
                if unknown {
                    let text = format!("{} -> {UNKNOWN}", self.compact(b, &p));
                    entries.push(entry(Sym::Update, Shown::Text(text)));
                } else if is_multiline(Some(b)) || b.as_object().is_some_and(|m| !m.is_empty()) {
                    entries.push(entry(
                        Sym::Delete,
                        self.whole(b, &p, Sym::Delete, col, true),
                    ));
                } else {
                    let text = format!("{} -> null", self.compact(b, &p));
                    entries.push(entry(Sym::Delete, Shown::Text(text)));
                }
                continue;
            };
            match (b, a) {
                (Value::Object(bm), Value::Object(am)) => {
                    let (children, n) = self.entries(bm, am, &p, Mode::Diff, col + 4);
                    let mut lines = Vec::new();
                    emit(&mut lines, children, n, col + 4, "element", "elements");
                    entries.push(entry(Sym::Update, Shown::Block(lines, "")));
                }
                (Value::String(bs), Value::String(as_))
                    if bs.contains('\n') || as_.contains('\n') =>
                {
                    entries.push(entry(Sym::Update, Shown::Heredoc(text_diff(bs, as_, col))));
                }
                _ => {
                    let (bt, at) = (self.compact(b, &p), self.compact(a, &p));
                    let mut text = format!("{bt} -> {at}");
                    if bt == at {
                        // Abbreviation hid the difference: say where it is.
                        if let (Some(bs), Some(as_)) = (b.as_str(), a.as_str()) {
                            let at_char = bs
                                .chars()
                                .zip(as_.chars())
                                .take_while(|(x, y)| x == y)
                                .count();
                            text.push_str(&format!(" (differs from character {})", at_char + 1));
                        }
                    }
                    entries.push(entry(Sym::Update, Shown::Text(text)));
                }
            }
        }
        (entries, hidden)
    }

    /// A whole value shown from one side (created or deleted); `to_null` marks an attribute
    /// removed by an update (`} -> null`).
    fn whole(&self, v: &Value, ptr: &str, sym: Sym, col: usize, to_null: bool) -> Shown {
        if self.sensitive(ptr) {
            return Shown::Text(SENSITIVE.into());
        }
        match v {
            Value::Object(m) if !m.is_empty() => {
                let empty = Map::new();
                let (b, a, mode) = if sym == Sym::Delete {
                    (m, &empty, Mode::Delete)
                } else {
                    (&empty, m, Mode::Create)
                };
                let (children, n) = self.entries(b, a, ptr, mode, col + 4);
                let mut lines = Vec::new();
                emit(&mut lines, children, n, col + 4, "element", "elements");
                Shown::Block(lines, if to_null { " -> null" } else { "" })
            }
            Value::String(s) if s.contains('\n') => Shown::Heredoc(
                s.lines()
                    .map(|l| Line {
                        col: col + 4,
                        sym: Some(Sym::Same),
                        body: l.to_owned(),
                    })
                    .collect(),
            ),
            _ => Shown::Text(self.compact(v, ptr)),
        }
    }
}

/// A line-by-line diff of two multi-line strings, three lines of context around each change.
fn text_diff(before: &str, after: &str, col: usize) -> Vec<Line> {
    let diff = TextDiff::from_lines(before, after);
    let mut lines = Vec::new();
    let hidden = |n: usize, lines: &mut Vec<Line>| {
        if n > 0 {
            lines.push(Line::comment(
                col + 6,
                format!(
                    "# ({} hidden)",
                    plural(n, "unchanged line", "unchanged lines")
                ),
            ));
        }
    };
    let mut shown_to = 0;
    for group in diff.grouped_ops(3) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        hidden(first.old_range().start.saturating_sub(shown_to), &mut lines);
        for op in &group {
            for ch in diff.iter_changes(op) {
                let sym = match ch.tag() {
                    ChangeTag::Equal => Sym::Same,
                    ChangeTag::Delete => Sym::Delete,
                    ChangeTag::Insert => Sym::Create,
                };
                lines.push(Line {
                    col: col + 4,
                    sym: Some(sym),
                    body: ch.value().trim_end_matches(['\n', '\r']).to_owned(),
                });
            }
        }
        shown_to = last.old_range().end;
    }
    hidden(diff.old_len().saturating_sub(shown_to), &mut lines);
    lines
}

// ---------------------------------------------------------------------------------------------
// JSON

/// Terraform's `actions` list for an action (a replace deletes, then creates).
pub fn actions(action: Action) -> Vec<&'static str> {
    match action {
        Action::NoOp => vec!["no-op"],
        Action::Create => vec!["create"],
        Action::Read => vec!["read"],
        Action::Update => vec!["update"],
        Action::Replace => vec!["delete", "create"],
        Action::Delete => vec!["delete"],
    }
}

fn reason_code(code: ReasonCode) -> Value {
    serde_json::to_value(code).unwrap_or(Value::Null)
}

/// Removes the values at `paths` from `value` (an object key is removed; an array element
/// becomes null; the whole value becomes null).
fn strip(value: &mut Value, paths: &[String]) {
    for p in paths {
        if p.is_empty() {
            *value = Value::Null;
            continue;
        }
        let Some((parent, last)) = p.rsplit_once('/') else {
            continue;
        };
        let key = unescape(last);
        match value.pointer_mut(parent) {
            Some(Value::Object(m)) => {
                m.remove(&key);
            }
            Some(Value::Array(a)) => {
                if let Some(slot) = key.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                    *slot = Value::Null;
                }
            }
            _ => {}
        }
    }
}

/// `{"a": {"b": true}}` for the pointer `/a/b` (an empty pointer flags the whole value).
fn flags(paths: &[String]) -> Value {
    let mut root = Value::Object(Map::new());
    for p in paths {
        if p.is_empty() {
            return Value::Bool(true);
        }
        let segs: Vec<String> = p.split('/').skip(1).map(unescape).collect();
        let mut node = &mut root;
        for (i, seg) in segs.iter().enumerate() {
            let Value::Object(m) = node else {
                break; // an ancestor is already flagged
            };
            if i + 1 == segs.len() {
                m.insert(seg.clone(), Value::Bool(true));
                break;
            }
            node = m
                .entry(seg.clone())
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    root
}

/// A pointer as a list of steps, as Terraform writes `replace_paths`.
fn steps(ptr: &str) -> Value {
    Value::Array(
        ptr.split('/')
            .skip(1)
            .map(|s| Value::String(unescape(s)))
            .collect(),
    )
}

/// A check as JSON.
pub fn check_json(c: &CheckResult) -> Value {
    let mut v = json!({
        "address": c.address.to_string(),
        "type": c.address.rtype.as_str(),
        "name": c.address.name,
        "status": c.status,
        "summary": c.summary,
    });
    if let Some(fix) = &c.fix {
        v["fix"] = fix.clone().into();
    }
    if let Some(d) = &c.details {
        v["details"] = d.clone();
    }
    if !c.depends_on.is_empty() {
        v["depends_on"] = c.depends_on.iter().map(ToString::to_string).collect();
    }
    v
}

/// The plan as a versioned JSON document modelled on `terraform show -json`. Sensitive values
/// are absent from `before` and `after` (flagged in `before_sensitive` / `after_sensitive`);
/// values known only after apply are absent from `after` (flagged in `after_unknown`).
pub fn json(plan: &Plan) -> Value {
    let errored = plan.has_failed_checks();
    let s = plan.summary();
    let changes: Vec<Value> = plan.changes.iter().map(change_json).collect();
    json!({
        "format_version": "1.0",
        "arcplan_version": env!("CARGO_PKG_VERSION"),
        "plan_format_version": plan.format_version,
        "stack": plan.stack,
        "mode": plan.mode,
        "config_digest": plan.config_digest,
        "applyable": plan.has_changes() && !errored,
        "complete": !errored,
        "errored": errored,
        "resource_changes": changes,
        "checks": plan.checks.iter().map(check_json).collect::<Vec<_>>(),
        "summary": { "add": s.add, "change": s.change, "destroy": s.destroy },
    })
}

fn change_json(c: &Change) -> Value {
    let side = |v: &Option<Value>, unknown: bool| {
        v.as_ref().map_or(Value::Null, |v| {
            let mut v = v.clone();
            strip(&mut v, &c.sensitive_paths);
            if unknown {
                strip(&mut v, &c.after_unknown);
            }
            v
        })
    };
    let sensitive = |v: &Option<Value>| {
        if v.is_some() {
            flags(&c.sensitive_paths)
        } else {
            Value::Bool(false)
        }
    };
    let mut v = json!({
        "address": c.address.to_string(),
        "mode": if c.action == Action::Read { "data" } else { "managed" },
        "type": c.address.rtype.as_str(),
        "name": c.address.name,
        "change": {
            "actions": actions(c.action),
            "before": side(&c.before, false),
            "after": side(&c.after, true),
            "after_unknown": flags(&c.after_unknown),
            "before_sensitive": sensitive(&c.before),
            "after_sensitive": sensitive(&c.after),
            "replace_paths": c.replace_paths.iter().map(|p| steps(p)).collect::<Vec<_>>(),
        },
    });
    if let Some(r) = &c.reason {
        v["action_reason"] = reason_code(r.code);
        v["reason_message"] = r.message.clone().into();
    }
    if !c.cascades_to.is_empty() {
        v["cascades_to"] = c.cascades_to.iter().map(ToString::to_string).collect();
    }
    v
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
pub(crate) mod golden {
    //! Golden files under `tests/golden/`; `ARCPLAN_UPDATE_GOLDEN=1` rewrites them.

    use similar::TextDiff;

    /// Compares `actual` with `tests/golden/NAME`, or rewrites the file when asked.
    pub(crate) fn check(name: &str, actual: &str) {
        let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
        if std::env::var_os("ARCPLAN_UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(format!("{}/tests/golden", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
            std::fs::write(&path, actual).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("cannot read {path} ({e}); run with ARCPLAN_UPDATE_GOLDEN=1 to create it")
        });
        if expected != actual {
            let diff = TextDiff::from_lines(&expected, actual)
                .unified_diff()
                .header(&format!("{name} (golden)"), &format!("{name} (actual)"))
                .to_string();
            panic!(
                "{name} differs from its golden file (ARCPLAN_UPDATE_GOLDEN=1 to accept):\n{diff}"
            );
        }
    }

    /// Like [`check`], for JSON: compared as values (key order does not matter), written pretty.
    pub(crate) fn check_json(name: &str, actual: &serde_json::Value) {
        let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
        let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
        if std::env::var_os("ARCPLAN_UPDATE_GOLDEN").is_none()
            && let Ok(expected) = std::fs::read_to_string(&path)
            && serde_json::from_str::<serde_json::Value>(&expected)
                .ok()
                .as_ref()
                == Some(actual)
        {
            return;
        }
        check(name, &text);
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Representative plans for the golden tests.

    use arcplan_engine::address::{Address, ResourceType};
    use arcplan_engine::plan::{
        Action, Change, CheckResult, CheckStatus, FORMAT_VERSION, Plan, PlanMode, Reason,
        ReasonCode,
    };
    use serde_json::{Value, json};

    /// A recognisable fake secret, put at sensitive paths; it must never be rendered.
    pub(crate) const SECRET: &str = "FAKE-SECRET-7f3a9c-do-not-print";

    pub(crate) fn addr(t: ResourceType, name: &str) -> Address {
        Address::new(t, name)
    }

    fn change(t: ResourceType, name: &str, action: Action) -> Change {
        Change::new(addr(t, name), action)
    }

    fn plan(mode: PlanMode, changes: Vec<Change>, checks: Vec<CheckResult>) -> Plan {
        Plan {
            format_version: FORMAT_VERSION.into(),
            config_digest: "sha256:0f1e2d".into(),
            stack: "prod".into(),
            mode,
            changes,
            checks,
        }
    }

    fn check(
        t: ResourceType,
        name: &str,
        status: CheckStatus,
        summary: &str,
        fix: Option<&str>,
    ) -> CheckResult {
        CheckResult {
            address: addr(t, name),
            status,
            summary: summary.into(),
            fix: fix.map(Into::into),
            details: None,
            depends_on: Vec::new(),
            desired: None,
        }
    }

    fn role_pass() -> CheckResult {
        check(
            ResourceType::ROLE_CHECK,
            "rg-arc",
            CheckStatus::Pass,
            "the caller may write Microsoft.Kubernetes/connectedClusters in /subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-arc (Contributor)",
            None,
        )
    }

    pub(crate) fn connectivity_pending() -> CheckResult {
        check(
            ResourceType::CONNECTIVITY,
            "mynewcluster",
            CheckStatus::Pending,
            "evaluated during apply, once its dependencies are in place",
            None,
        )
    }

    /// A long base64 public key (an RSA-4096 `SubjectPublicKeyInfo` is about 736 characters).
    pub(crate) fn public_key(fill: char) -> String {
        format!("MIICCgKCAgEA{}AAE=", fill.to_string().repeat(496))
    }

    fn cluster_access() -> Value {
        json!({"kubeconfig": "~/.kube/config", "context": "kind-arc"})
    }

    fn cluster_after() -> Value {
        json!({
            "subscriptionId": "00000000-0000-0000-0000-000000000001",
            "resourceGroup": "rg-arc",
            "name": "mynewcluster",
            "location": "westeurope",
            "tags": {"arcplan-stack": "prod", "env": "dev"},
            "identity": {"type": "SystemAssigned"},
            "distribution": "kind",
            "infrastructure": "generic",
            "agentPublicKeyCertificate": {"$ref": "k8s.onboardingKey.mynewcluster#publicKey"},
            "agentAutoUpgrade": true,
        })
    }

    fn agents_after(version: &str) -> Value {
        json!({
            "cluster": cluster_access(),
            "connectedClusterId": {"$ref": "arc.connectedCluster.mynewcluster#id"},
            "installer": "helm",
            "version": version,
            "manifests": null,
            "timeout": "15m",
            "proxy": null,
            "ownership": {
                "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000001",
                "AZURE_RESOURCE_GROUP": "rg-arc",
                "AZURE_RESOURCE_NAME": "mynewcluster",
                "AZURE_REGION": "westeurope",
                "AZURE_ARC_AUTOUPDATE": "true",
                "AZURE_ENVIRONMENT": "AzureCloud",
            },
        })
    }

    /// A first onboarding: everything is created; the public key is known only after apply.
    pub(crate) fn onboarding() -> Plan {
        let mut rp = change(
            ResourceType::RESOURCE_PROVIDER,
            "Microsoft.Kubernetes",
            Action::NoOp,
        );
        rp.before =
            Some(json!({"namespace": "Microsoft.Kubernetes", "registrationState": "Registered"}));
        rp.after = rp.before.clone();
        let mut rp2 = change(
            ResourceType::RESOURCE_PROVIDER,
            "Microsoft.KubernetesConfiguration",
            Action::Create,
        );
        rp2.after = Some(
            json!({"namespace": "Microsoft.KubernetesConfiguration", "registrationState": "Registered"}),
        );
        rp2.reason = Some(Reason::new(
            ReasonCode::NotFound,
            "the provider is not registered in this subscription",
        ));
        let mut rg = change(ResourceType::RESOURCE_GROUP, "rg-arc", Action::Create);
        rg.after = Some(
            json!({"name": "rg-arc", "location": "westeurope", "tags": {"arcplan-stack": "prod", "env": "dev"}}),
        );
        let mut key = change(ResourceType::ONBOARDING_KEY, "mynewcluster", Action::Create);
        key.after = Some(json!({
            "cluster": cluster_access(),
            "namespace": "azure-arc",
            "secretName": "azure-arc-connect-privatekey",
            "keyBits": 4096,
        }));
        key.after_unknown = vec!["/publicKey".into()];
        key.sensitive_paths = vec!["/privateKey".into()];
        let mut cc = change(
            ResourceType::CONNECTED_CLUSTER,
            "mynewcluster",
            Action::Create,
        );
        cc.after = Some(cluster_after());
        cc.after_unknown = vec!["/agentPublicKeyCertificate".into()];
        let mut agents = change(ResourceType::ARC_AGENTS, "mynewcluster", Action::Create);
        agents.after = Some(agents_after("1.21.10"));
        agents.after_unknown = vec!["/connectedClusterId".into()];
        plan(
            PlanMode::Normal,
            vec![rp, rp2, rg, key, cc, agents],
            vec![role_pass(), connectivity_pending()],
        )
    }

    /// Tags change in place; the agents' Helm values (a multi-line string) change.
    pub(crate) fn update_tags() -> Plan {
        let mut rg = change(ResourceType::RESOURCE_GROUP, "rg-arc", Action::Update);
        rg.before = Some(
            json!({"name": "rg-arc", "location": "westeurope", "tags": {"arcplan-stack": "prod", "env": "dev", "owner": "team-a"}}),
        );
        rg.after = Some(
            json!({"name": "rg-arc", "location": "westeurope", "tags": {"arcplan-stack": "prod", "env": "staging", "cost-center": "1234"}}),
        );
        let mut cc = change(
            ResourceType::CONNECTED_CLUSTER,
            "mynewcluster",
            Action::Update,
        );
        let mut before = cluster_after();
        before["agentPublicKeyCertificate"] = public_key('A').into();
        before["id"] = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-arc/providers/Microsoft.Kubernetes/connectedClusters/mynewcluster".into();
        let mut after = before.clone();
        after["tags"]["team"] = "platform".into();
        after["agentAutoUpgrade"] = false.into();
        cc.before = Some(before);
        cc.after = Some(after);
        let mut agents = change(ResourceType::ARC_AGENTS, "mynewcluster", Action::Update);
        let mut before = agents_after("1.21.10");
        before["connectedClusterId"] = "/subscriptions/…/connectedClusters/mynewcluster".into();
        before["helmValues"] = "global:\n  httpsProxy: \"\"\n  noProxy: \"\"\nsystemDefaultValues:\n  clusterconnect-agent:\n    enabled: true\n  azureArcAgents:\n    autoUpdate: true\n  logging:\n    level: info\n".into();
        let mut after = before.clone();
        after["version"] = "1.22.0".into();
        after["helmValues"] = "global:\n  httpsProxy: \"http://proxy.internal:3128\"\n  noProxy: \"\"\nsystemDefaultValues:\n  clusterconnect-agent:\n    enabled: true\n  azureArcAgents:\n    autoUpdate: true\n  logging:\n    level: debug\n".into();
        agents.before = Some(before);
        agents.after = Some(after);
        plan(PlanMode::Normal, vec![rg, cc, agents], vec![role_pass()])
    }

    /// A replace with a reason, its cascade, and forces-replacement marks; the onboarding key is
    /// replaced on request, with its private key (sensitive) in the live state.
    pub(crate) fn replace() -> Plan {
        let mut key = change(
            ResourceType::ONBOARDING_KEY,
            "mynewcluster",
            Action::Replace,
        );
        key.reason = Some(Reason::new(
            ReasonCode::Requested,
            "replacement was requested",
        ));
        let before = json!({
            "cluster": cluster_access(),
            "namespace": "azure-arc",
            "secretName": "azure-arc-connect-privatekey",
            "keyBits": 2048,
            "publicKey": public_key('B'),
            "privateKey": SECRET,
            "protected": {"pem": SECRET, "passphrase": SECRET},
        });
        let mut after = before.clone();
        after["keyBits"] = 4096.into();
        after["publicKey"] = Value::Null;
        after["privateKey"] = format!("{SECRET}-new").into();
        after["protected"]["pem"] = format!("{SECRET}-new").into();
        key.before = Some(before);
        key.after = Some(after);
        key.after_unknown = vec!["/publicKey".into()];
        key.sensitive_paths = vec!["/privateKey".into(), "/protected".into()];
        key.replace_paths = vec!["/keyBits".into()];
        key.cascades_to = vec![addr(ResourceType::CONNECTED_CLUSTER, "mynewcluster")];
        let mut cc = change(
            ResourceType::CONNECTED_CLUSTER,
            "mynewcluster",
            Action::Replace,
        );
        cc.reason = Some(Reason::new(
            ReasonCode::CannotUpdate,
            "/distribution, /agentPublicKeyCertificate cannot change in place",
        ));
        let mut before = cluster_after();
        before["agentPublicKeyCertificate"] = public_key('B').into();
        before["distribution"] = "k3s".into();
        let mut after = cluster_after();
        after["tags"]["env"] = "prod".into();
        cc.before = Some(before);
        cc.after = Some(after);
        cc.after_unknown = vec!["/agentPublicKeyCertificate".into()];
        cc.replace_paths = vec!["/distribution".into(), "/agentPublicKeyCertificate".into()];
        cc.cascades_to = vec![
            addr(ResourceType::ARC_AGENTS, "mynewcluster"),
            addr(ResourceType::CONNECTIVITY, "mynewcluster"),
        ];
        let mut agents = change(ResourceType::ARC_AGENTS, "mynewcluster", Action::Update);
        let mut before = agents_after("1.21.10");
        before["connectedClusterId"] = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-arc/providers/Microsoft.Kubernetes/connectedClusters/mynewcluster".into();
        let after = before.clone();
        agents.before = Some(before);
        agents.after = Some(after);
        agents.after_unknown = vec!["/connectedClusterId".into()];
        agents.reason = Some(Reason::new(
            ReasonCode::ReplaceBecauseDependency,
            "arc.connectedCluster.mynewcluster is replaced",
        ));
        plan(
            PlanMode::Normal,
            vec![key, cc, agents],
            vec![role_pass(), connectivity_pending()],
        )
    }

    /// `destroy`, plus a resource pruned because the file no longer lists it.
    pub(crate) fn destroy() -> Plan {
        let reason = || Reason::new(ReasonCode::DeleteBecauseDestroy, "destroy was requested");
        let mut agents = change(ResourceType::ARC_AGENTS, "mynewcluster", Action::Delete);
        agents.reason = Some(reason());
        let mut before = agents_after("1.21.10");
        before["connectedClusterId"] = "/subscriptions/…/connectedClusters/mynewcluster".into();
        agents.before = Some(before);
        let mut cc = change(
            ResourceType::CONNECTED_CLUSTER,
            "mynewcluster",
            Action::Delete,
        );
        cc.reason = Some(reason());
        let mut before = cluster_after();
        before["agentPublicKeyCertificate"] = public_key('C').into();
        cc.before = Some(before);
        cc.cascades_to = vec![addr(ResourceType::ARC_AGENTS, "mynewcluster")];
        let mut key = change(ResourceType::ONBOARDING_KEY, "mynewcluster", Action::Delete);
        key.reason = Some(reason());
        key.before = Some(json!({
            "cluster": cluster_access(),
            "namespace": "azure-arc",
            "secretName": "azure-arc-connect-privatekey",
            "keyBits": 4096,
            "privateKey": SECRET,
        }));
        key.sensitive_paths = vec!["/privateKey".into()];
        let mut old = change(ResourceType::RESOURCE_GROUP, "rg-old", Action::Delete);
        old.reason = Some(Reason::new(
            ReasonCode::DeleteBecauseNoResourceConfig,
            "azure.resourceGroup.rg-old carries this stack's tag but is no longer in the configuration",
        ));
        old.before = Some(
            json!({"name": "rg-old", "location": "northeurope", "tags": {"arcplan-stack": "prod"}}),
        );
        plan(PlanMode::Destroy, vec![agents, cc, key, old], vec![])
    }

    /// The caller lacks a role: the plan cannot be applied.
    pub(crate) fn failed_check() -> Plan {
        let mut rg = change(ResourceType::RESOURCE_GROUP, "rg-arc", Action::Create);
        rg.after = Some(
            json!({"name": "rg-arc", "location": "westeurope", "tags": {"arcplan-stack": "prod"}}),
        );
        let mut cc = change(
            ResourceType::CONNECTED_CLUSTER,
            "mynewcluster",
            Action::Create,
        );
        cc.after = Some(cluster_after());
        cc.after_unknown = vec!["/agentPublicKeyCertificate".into()];
        let mut fail = check(
            ResourceType::ROLE_CHECK,
            "rg-arc",
            CheckStatus::Fail,
            "the caller (app 11111111-2222-3333-4444-555555555555) may not write Microsoft.Resources/resourceGroups or Microsoft.Kubernetes/connectedClusters in /subscriptions/00000000-0000-0000-0000-000000000001",
            Some(
                "az role assignment create --assignee 11111111-2222-3333-4444-555555555555 --role \"Kubernetes Cluster - Azure Arc Onboarding\" --scope /subscriptions/00000000-0000-0000-0000-000000000001",
            ),
        );
        fail.details = Some(json!({"missing": ["Microsoft.Resources/resourceGroups/write"]}));
        plan(
            PlanMode::Normal,
            vec![rg, cc],
            vec![fail, connectivity_pending()],
        )
    }

    /// Nothing to do.
    pub(crate) fn no_changes() -> Plan {
        let mut sub = change(
            ResourceType::SUBSCRIPTION,
            "00000000-0000-0000-0000-000000000001",
            Action::Read,
        );
        sub.after = Some(json!({"state": "Enabled"}));
        let mut rg = change(ResourceType::RESOURCE_GROUP, "rg-arc", Action::NoOp);
        rg.before = Some(
            json!({"name": "rg-arc", "location": "westeurope", "tags": {"arcplan-stack": "prod"}}),
        );
        rg.after = rg.before.clone();
        let mut conn = check(
            ResourceType::CONNECTIVITY,
            "mynewcluster",
            CheckStatus::Pass,
            "Connected: agent 1.21.10, Kubernetes v1.30.6, 3 nodes, 12 cores",
            None,
        );
        conn.depends_on = vec![addr(ResourceType::ARC_AGENTS, "mynewcluster")];
        plan(PlanMode::Normal, vec![sub, rg], vec![role_pass(), conn])
    }

    /// Every fixture, by name.
    pub(crate) fn all() -> Vec<(&'static str, Plan)> {
        vec![
            ("onboarding", onboarding()),
            ("update_tags", update_tags()),
            ("replace", replace()),
            ("destroy", destroy()),
            ("failed_check", failed_check()),
            ("no_changes", no_changes()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{self, SECRET};
    use super::*;

    #[test]
    fn golden_human_markdown_json() {
        for (name, plan) in fixtures::all() {
            golden::check(&format!("plan_{name}.txt"), &human(&plan, false));
            golden::check(&format!("plan_{name}.md"), &markdown(&plan));
            golden::check_json(&format!("plan_{name}.json"), &json(&plan));
        }
    }

    #[test]
    fn no_rendering_shows_a_sensitive_value() {
        for (name, plan) in fixtures::all() {
            let outputs = [
                human(&plan, false),
                human(&plan, true),
                markdown(&plan),
                json(&plan).to_string(),
            ];
            for out in outputs {
                assert!(
                    !out.contains("FAKE-SECRET"),
                    "{name} leaks the secret:\n{out}"
                );
            }
        }
        // The fixtures really do carry the secret, unredacted, at sensitive paths.
        let p = fixtures::replace();
        assert!(serde_json::to_string(&p).unwrap().contains(SECRET));
    }

    #[test]
    fn without_colour_there_is_no_escape_and_with_colour_there_is() {
        for (name, plan) in fixtures::all() {
            assert!(!human(&plan, false).contains('\x1b'), "{name}");
            assert!(!markdown(&plan).contains('\x1b'), "{name}");
        }
        let coloured = human(&fixtures::replace(), true);
        assert!(coloured.contains(&format!("{CREATE}+{CREATE:#}")));
        assert!(coloured.contains(&format!("{DELETE}-{DELETE:#}")));
        assert!(coloured.contains(&format!("{UPDATE}~{UPDATE:#}")));
    }

    #[test]
    fn summary_line_and_header() {
        let p = fixtures::onboarding();
        let text = human(&p, false);
        assert!(text.starts_with("arcplan will perform the following actions:\n"));
        assert!(text.ends_with("Plan: 5 to add, 0 to change, 0 to destroy.\n"));
        let none = human(&fixtures::no_changes(), false);
        assert!(none.starts_with("No changes. Live state matches the configuration.\n"));
        let failed = human(&fixtures::failed_check(), false);
        assert!(failed.trim_end().ends_with("then run plan again."));
        assert!(failed.contains("      fix: az role assignment create"));
    }

    #[test]
    fn long_values_are_abbreviated_and_unknowns_marked() {
        assert_eq!(
            abbreviate(&fixtures::public_key('A')),
            "MIICCgKCAgEA…(512 chars)…AAE="
        );
        let text = human(&fixtures::onboarding(), false);
        assert!(text.contains("+ agentPublicKeyCertificate = (known after apply)"));
        assert!(!text.contains("$ref"));
        let text = human(&fixtures::replace(), false);
        assert!(text.contains("# forces replacement"));
        assert!(text.contains(
            "# (this also affects: k8s.arcAgents.mynewcluster, arc.connectivity.mynewcluster)"
        ));
    }

    #[test]
    fn edge_values() {
        use arcplan_engine::address::{Address, ResourceType};
        let mut c = Change::new(
            Address::new(ResourceType::CONNECTED_CLUSTER, "c"),
            Action::Update,
        );
        let (a, mut b) = (fixtures::public_key('A'), fixtures::public_key('A'));
        b.replace_range(300..301, "Z");
        c.before = Some(json!({
            "key": a,
            "id": format!("/subscriptions/{}", "0".repeat(80)),
            "list": [{"name": "x", "token": SECRET}],
            "gone": {"a": 1},
        }));
        c.after = Some(json!({
            "key": b,
            "id": format!("/subscriptions/{}", "1".repeat(80)),
            "list": [{"name": "y", "token": SECRET}],
            "nested": {"deep": {"$ref": "k8s.onboardingKey.c#publicKey"}},
        }));
        c.sensitive_paths = vec!["/list/0/token".into()];
        c.after_unknown = vec!["/nested/deep".into()];
        let mut plan = fixtures::no_changes();
        plan.changes = vec![c];
        let text = human(&plan, false);
        assert!(text.contains("(differs from character 301)"), "{text}");
        assert!(
            text.contains(&format!("/subscriptions/{}", "1".repeat(80))),
            "ids stay whole"
        );
        assert!(
            text.contains(r#"[{"name":"x","token":"(sensitive value)"}]"#),
            "{text}"
        );
        assert!(text.contains("+ deep = (known after apply)"), "{text}");
        assert!(text.contains("        } -> null"), "{text}");
        for out in [text, markdown(&plan), json(&plan).to_string()] {
            assert!(!out.contains(SECRET) && !out.contains("$ref"), "{out}");
        }
    }

    #[test]
    fn json_document_shape() {
        let v = json(&fixtures::replace());
        assert_eq!(v["format_version"], "1.0");
        assert_eq!(v["applyable"], true);
        let key = &v["resource_changes"][0];
        assert_eq!(key["change"]["actions"], json!(["delete", "create"]));
        assert_eq!(key["action_reason"], "requested");
        assert!(key["change"]["before"].get("privateKey").is_none());
        assert!(key["change"]["before"].get("protected").is_none());
        assert_eq!(
            key["change"]["before_sensitive"],
            json!({"privateKey": true, "protected": true})
        );
        assert_eq!(key["change"]["after_unknown"], json!({"publicKey": true}));
        assert_eq!(key["change"]["replace_paths"], json!([["keyBits"]]));
        let failed = json(&fixtures::failed_check());
        assert_eq!(failed["errored"], true);
        assert_eq!(failed["applyable"], false);
        assert_eq!(json(&fixtures::no_changes())["applyable"], false);
    }

    #[test]
    fn pointer_helpers() {
        assert!(at_or_under("/a/b", "/a"));
        assert!(!at_or_under("/ab", "/a"));
        assert_eq!(
            flags(&["/a/b".into(), "/c".into()]),
            json!({"a": {"b": true}, "c": true})
        );
        assert_eq!(flags(&["/a".into(), "/a/b".into()]), json!({"a": true}));
        let mut v = json!({"a": {"b~/c": 1, "d": [1, 2]}});
        strip(&mut v, &["/a/b~0~1c".into(), "/a/d/1".into()]);
        assert_eq!(v, json!({"a": {"d": [1, null]}}));
        assert_eq!(key_text("arcplan-stack"), "\"arcplan-stack\"");
        assert_eq!(key_text("env"), "env");
    }
}
