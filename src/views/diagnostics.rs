//! Diagnostics, as source snippets for people and as JSON for tools.

use super::Output;
use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use arcplan_engine::diag::{Diagnostic, Diagnostics, Severity, masked_source, source_line};
use serde_json::json;

/// Prints every diagnostic to standard error, with the offending line when the source is known.
/// Every secret any of them flags is hidden in every snippet.
pub fn print(out: &Output, diags: &Diagnostics, source: Option<&str>) {
    if diags.is_empty() {
        return;
    }
    let masked = source.map(|s| masked_source(s, diags));
    let source = masked.as_deref();
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
    // Key names and values in messages come from the file: show its invisible characters.
    let title = visible(&title);
    let mut group = Group::with_title(level.primary_title(title).id(d.code));
    let masked = source
        .filter(|_| !d.secret_spans.is_empty())
        .map(|s| masked_source(s, &Diagnostics::from(d.clone())));
    let source = masked.as_deref().or(source);
    // Lines as the parser counts them, shown with invisible breaks made visible (one character
    // for one, so the diagnostic's column still points at the same character).
    let line_text = d
        .location
        .as_ref()
        .zip(source)
        .and_then(|(l, s)| source_line(s, l.line))
        .map(visible);
    match (&d.location, line_text) {
        (Some(loc), Some(line)) => {
            let span = token_span(
                &line,
                loc.column as usize,
                d.code == "unknown-key" || d.code == "missing-key",
            );
            let label = visible(d.key.as_deref().unwrap_or(""));
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
        report.push(Group::with_title(Level::HELP.secondary_title(visible(h))));
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

/// A source line with the characters a terminal would not show as text replaced, one for one:
/// Unicode line and paragraph separators (U+0085, U+2028, U+2029) and other control characters
/// (tabs excepted).
fn visible(line: &str) -> String {
    line.chars()
        .map(|c| match c {
            '\u{85}' | '\u{2028}' => '\u{2424}',
            '\u{2029}' => '\u{b6}',
            '\t' => c,
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect()
}

/// The byte range of the token starting at a 1-based character column (always on character
/// boundaries; an empty token covers the character at the column, if any).
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
    let len = if token.is_empty() {
        rest.chars().next().map_or(0, char::len_utf8)
    } else {
        token.len()
    };
    start..start + len
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
        // A value that is only Unicode whitespace (NEL is two bytes) must not be cut in half.
        assert_eq!(token_span("stack: \u{85}", 8, false), 7..9);
        assert_eq!(token_span("k: \u{2028}", 4, false), 3..6);
    }

    #[test]
    fn renders_unicode_line_breaks_without_panicking() {
        use arcplan_engine::diag::SourceLocation;
        for (text, line, column) in [
            ("apiVersion: arcplan/v1\nstack: \u{85}\n", 2, 8),
            ("a: 1\nstack: \u{2028}\n", 2, 8),
            ("a: 1\r\nstack: x\u{2029}\r\n", 2, 9),
            ("a: 1\rstack: \u{85}", 2, 8),
            ("\u{85}\u{2028}\u{2029}", 1, 2),
        ] {
            let d = Diagnostic::error("invalid-format", "x").with_location(Some(SourceLocation {
                file: "f.yaml".into(),
                line,
                column,
            }));
            let text_out = render(&Renderer::plain(), &d, Some(text));
            assert!(text_out.contains("f.yaml"), "{text_out}");
            assert!(!text_out.contains('\u{85}') && !text_out.contains('\u{2028}'));
        }
    }
}
