//! The resource diff, as lines that render either for a terminal or as a ```diff block.

use super::pointer::{at_or_under, escape, unescape};
use super::{BOLD, CREATE, DELETE, READ, UPDATE, paint, plural, verb};
use arcplan_engine::plan::{Action, Change};
use serde_json::{Map, Value};
use similar::{ChangeTag, TextDiff};
use std::collections::BTreeSet;

/// What a value whose pointer is sensitive shows instead of itself.
const SENSITIVE: &str = "(sensitive value)";
/// What a value known only after apply shows.
const UNKNOWN: &str = "(known after apply)";
/// Single-line strings longer than this are abbreviated in the middle.
const LONG: usize = 64;

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
pub(super) struct Line {
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
    pub(super) fn human(&self, color: bool) -> String {
        match self.sym {
            Some(s) => format!("{}{} {}", " ".repeat(self.col), s.painted(color), self.body),
            None => format!("{}{}", " ".repeat(self.col), self.body),
        }
    }

    /// For a ```diff block: the symbol moves to the first column (`~` becomes `!`, which
    /// GitHub highlights as a change), so the highlighter sees it; alignment is kept.
    pub(super) fn diff_marked(&self) -> String {
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
pub(super) fn resource_lines(c: &Change, color: bool) -> Vec<Line> {
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
    let (before_v, after_v) = (c.before_value(), c.planned_after());
    let (before, after, mode) = match c.action {
        Action::Create | Action::Read => (None, after_v.as_deref(), Mode::Create),
        Action::Delete => (before_v.as_ref(), None, Mode::Delete),
        _ => (before_v.as_ref(), after_v.as_deref(), Mode::Diff),
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
            let (b, a) = (b.flatten().unwrap_or(&empty), a.flatten().unwrap_or(&empty));
            // Only what the planned state carries diffs: an attribute only the live state has
            // (an ownership record, readiness, counts) is read, not managed, so it is named as
            // read-only instead of shown as a removal. A planned removal is an explicit null.
            let (declared, read_only) = if mode == Mode::Diff {
                r.split_read_only(b, a)
            } else {
                (b.clone(), Vec::new())
            };
            let (entries, hidden) = r.entries(&declared, a, "", mode, 6);
            emit(&mut lines, entries, hidden, 6, "attribute", "attributes");
            if !read_only.is_empty() {
                lines.push(Line::comment(
                    8,
                    format!(
                        "# (read-only, not changed by this plan: {})",
                        read_only.join(", ")
                    ),
                ));
            }
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
/// How a key shows: bare when it is an identifier, quoted otherwise.
pub(super) fn key_text(key: &str) -> String {
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
pub(super) fn abbreviate(s: &str) -> String {
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

    /// `before` without the top-level attributes the planned state does not carry (neither a
    /// value, an explicit null, nor an unknown), and those attributes' names.
    fn split_read_only(
        &self,
        before: &Map<String, Value>,
        after: &Map<String, Value>,
    ) -> (Map<String, Value>, Vec<String>) {
        let mut declared = Map::new();
        let mut read_only = Vec::new();
        for (k, v) in before {
            let p = format!("/{}", escape(k));
            let planned = after.contains_key(k)
                || self.change.after_unknown.iter().any(|u| at_or_under(u, &p));
            if planned {
                declared.insert(k.clone(), v.clone());
            } else {
                read_only.push(key_text(k));
            }
        }
        (declared, read_only)
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
