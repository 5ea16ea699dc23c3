//! Diagnostics, as source snippets for people and as JSON for tools.

use super::Output;
use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use arcplan_engine::diag::{Diagnostic, Diagnostics, Severity};
use serde_json::json;

/// Prints every diagnostic to standard error, with the offending line when the source is known.
pub fn print(out: &Output, diags: &Diagnostics, source: Option<&str>) {
    if diags.is_empty() {
        return;
    }
    let renderer = if out.no_color {
        Renderer::plain()
    } else {
        Renderer::styled()
    };
    let mut text = String::new();
    for d in diags {
        text.push_str(&render(&renderer, d, source));
        text.push_str("\n\n");
    }
    let (errors, warnings) = diags.iter().fold((0, 0), |(e, w), d| match d.severity {
        Severity::Error => (e + 1, w),
        Severity::Warning => (e, w + 1),
    });
    if errors > 0 {
        text.push_str(&format!(
            "{} found.",
            plural(errors, "error")
                + &if warnings > 0 {
                    format!(" and {}", plural(warnings, "warning"))
                } else {
                    String::new()
                }
        ));
    }
    out.stderr(text.trim_end());
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// One diagnostic as text (no trailing newline).
pub fn render(renderer: &Renderer, d: &Diagnostic, source: Option<&str>) -> String {
    let level = match d.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let mut title = d.message.clone();
    if let Some(a) = &d.address {
        title.push_str(&format!(" [{a}]"));
    }
    let mut group = Group::with_title(level.primary_title(title).id(d.code));
    let line_text = d.location.as_ref().zip(source).and_then(|(l, s)| {
        s.lines()
            .nth(l.line.saturating_sub(1) as usize)
            .map(|t| (l, t))
    });
    match (&d.location, line_text) {
        (Some(loc), Some((_, line))) => {
            let span = token_span(
                line,
                loc.column as usize,
                d.code == "unknown-key" || d.code == "missing-key",
            );
            let label = d.key.as_deref().unwrap_or("");
            group = group.element(
                Snippet::source(line)
                    .line_start(loc.line as usize)
                    .path(loc.file.clone())
                    .annotation(AnnotationKind::Primary.span(span).label(label)),
            );
        }
        (Some(loc), None) => {
            group = group.element(Level::NOTE.message(format!("at {loc}")));
        }
        _ => {}
    }
    let mut report: Vec<Group<'_>> = vec![group];
    if let Some(h) = &d.hint {
        report.push(Group::with_title(Level::HELP.secondary_title(h.clone())));
    }
    // Keep `file:line:col` greppable even when the snippet is shown.
    let mut text = renderer.render(&report);
    if let Some(loc) = &d.location
        && !text.contains(&loc.to_string())
    {
        text.push_str(&format!("\n  at {loc}"));
    }
    text
}

/// The byte range of the token starting at a 1-based character column.
fn token_span(line: &str, column: usize, key: bool) -> std::ops::Range<usize> {
    let start = line
        .char_indices()
        .nth(column.saturating_sub(1))
        .map(|(i, _)| i)
        .unwrap_or(line.len());
    let rest = &line[start..];
    let stop = |c: char| c == '#' || (key && c == ':') || (!key && matches!(c, ',' | ']' | '}'));
    let len = rest.find(stop).unwrap_or(rest.len());
    let token = rest[..len].trim_end();
    let end = start + token.len().max(1).min(rest.len().max(1));
    start..end.min(line.len()).max(start)
}

/// The machine-readable report of `validate --json`.
pub fn json_report(diags: &Diagnostics, resources: Option<usize>) -> String {
    let errors = diags.errors().count();
    let doc = json!({
        "format_version": "1.0",
        "valid": errors == 0,
        "error_count": errors,
        "warning_count": diags.len() - errors,
        "resource_count": resources,
        "diagnostics": diags,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_the_token() {
        assert_eq!(token_span("  subscripton: x", 3, true), 2..13);
        assert_eq!(token_span("  cloud: AzureClod # c", 10, false), 9..18);
        assert_eq!(token_span("  tags: { a: b }", 11, false), 10..14);
        assert_eq!(token_span("", 5, false), 0..0);
    }
}
