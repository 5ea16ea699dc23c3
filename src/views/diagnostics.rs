//! Diagnostics, as source snippets for people and as JSON for tools.

use super::Output;
use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use arcplan_config::validate::SECRET_KEYS;
use arcplan_engine::diag::{Diagnostic, Diagnostics, Severity, source_line};
use serde_json::json;

/// Prints every diagnostic to standard error, with the offending line when the source is known.
/// Every secret any of them flags is hidden in every snippet.
pub fn print(out: &Output, diags: &Diagnostics, source: Option<&str>) {
    if diags.is_empty() {
        return;
    }
    let spans: Vec<_> = diags.iter().flat_map(|d| d.secret_spans.clone()).collect();
    let masked = source.map(|s| mask_secrets(s, &spans));
    // A diagnostic in another file (an inventory row) is shown with a line of that file: each
    // file a diagnostic names is read once; `source` is the desired-state file's text.
    let mut others: std::collections::HashMap<String, Option<String>> = Default::default();
    let renderer = if out.no_color {
        Renderer::plain()
    } else {
        Renderer::styled()
    };
    let mut text = String::new();
    for d in diags {
        let own = match (&d.location, source) {
            (Some(l), Some(main)) => others
                .entry(l.file.clone())
                .or_insert_with(|| {
                    arcplan_config::read_source(std::path::Path::new(&l.file))
                        .filter(|t| t != main)
                        .map(|t| mask_secrets(&t, &[]))
                })
                .as_deref(),
            _ => None,
        };
        text.push_str(&render(&renderer, d, own.or(masked.as_deref())));
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
    // Every snippet is cut from masked text, whatever the diagnostic and even when the file
    // did not parse.
    let masked = source.map(|s| mask_secrets(s, &d.secret_spans));
    let source = masked.as_deref();
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

/// `source` with every secret hidden, character for character (line breaks kept, so lines and
/// columns stay where diagnostics point): the flagged `spans`, and, lexically (the file need not
/// parse), the value of every secret key and the password of every `scheme://user:password@`.
fn mask_secrets(source: &str, spans: &[std::ops::Range<usize>]) -> String {
    let mut hide = vec![false; source.len()];
    for span in spans {
        // A block scalar's span runs to the next key's indentation: hide only up to its last
        // visible character.
        let Some(text) = source.get(span.start.min(source.len())..span.end.min(source.len()))
        else {
            continue;
        };
        let end = span.start + text.trim_end().len();
        hide[span.start..end].iter_mut().for_each(|h| *h = true);
    }
    lexical_secrets(source, &mut hide);
    url_passwords(source, &mut hide);
    source
        .char_indices()
        .map(|(i, c)| {
            if hide[i] && c != '\n' && c != '\r' {
                '*'
            } else {
                c
            }
        })
        .collect()
}

/// Lines as the YAML parser counts them: (byte offset, text without the break).
fn lines(source: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = source.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' || bytes[i] == b'\r' {
            out.push((start, &source[start..i]));
            if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
            start = i + 1;
        }
        i += 1;
    }
    out.push((start, &source[start.min(source.len())..]));
    out
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Marks the values of [`SECRET_KEYS`] in block and flow mappings, line by line.
fn lexical_secrets(source: &str, hide: &mut [bool]) {
    let lines = lines(source);
    for (n, &(offset, line)) in lines.iter().enumerate() {
        let b = line.as_bytes();
        for key in SECRET_KEYS {
            let mut from = 0;
            while let Some(found) = line[from..].find(key) {
                let at = from + found;
                from = at + key.len();
                // What comes before: the line's start (after indentation and `- `), or `{`/`,`.
                let before = line[..at].trim_end_matches(['"', '\'']).trim_end();
                let flow = before.ends_with('{') || before.ends_with(',');
                let block = before.chars().all(|c| c == ' ' || c == '-');
                if !flow && !block {
                    continue;
                }
                // What comes after: an optional closing quote, spaces, `:` and a space or the end.
                let mut j = at + key.len();
                if matches!(b.get(j), Some(b'"' | b'\'')) {
                    j += 1;
                }
                while b.get(j) == Some(&b' ') {
                    j += 1;
                }
                if b.get(j) != Some(&b':') || !matches!(b.get(j + 1), None | Some(b' ' | b'\t')) {
                    continue;
                }
                j += 1;
                while matches!(b.get(j), Some(b' ' | b'\t')) {
                    j += 1;
                }
                let end = match b.get(j) {
                    None | Some(b'#') | Some(b'{') | Some(b'[') | Some(b'&') | Some(b'*') => {
                        continue;
                    }
                    Some(b'"') => {
                        let mut k = j + 1;
                        while k < b.len() && b[k] != b'"' {
                            k += if b[k] == b'\\' { 2 } else { 1 };
                        }
                        (k + 1).min(b.len())
                    }
                    Some(b'\'') => {
                        let mut k = j + 1;
                        while k < b.len() {
                            if b[k] == b'\'' {
                                if b.get(k + 1) == Some(&b'\'') {
                                    k += 2;
                                    continue;
                                }
                                break;
                            }
                            k += 1;
                        }
                        (k + 1).min(b.len())
                    }
                    Some(b'|' | b'>') => {
                        let indent = indent_of(line);
                        for &(o, l) in &lines[n + 1..] {
                            if !l.trim().is_empty() && indent_of(l) <= indent {
                                break;
                            }
                            let start = o + indent_of(l);
                            let stop = o + l.trim_end().len();
                            if start < stop {
                                hide[start..stop].iter_mut().for_each(|h| *h = true);
                            }
                        }
                        // The indicator line itself holds no secret.
                        j
                    }
                    Some(_) => {
                        let rest = &line[j..];
                        let mut len = rest.len();
                        if let Some(c) = rest.find(" #").or_else(|| rest.find("\t#")) {
                            len = len.min(c);
                        }
                        if flow && let Some(c) = rest.find([',', '}']) {
                            len = len.min(c);
                        }
                        j + rest[..len].trim_end().len()
                    }
                };
                hide[offset + j..offset + end]
                    .iter_mut()
                    .for_each(|h| *h = true);
            }
        }
    }
}

/// Marks the password of every `scheme://user:password@` in the text.
fn url_passwords(source: &str, hide: &mut [bool]) {
    let mut from = 0;
    while let Some(found) = source[from..].find("://") {
        let start = from + found + 3;
        from = start;
        let rest = &source[start..];
        let authority_len = rest
            .find(|c: char| c.is_whitespace() || "/\"',}]#?".contains(c))
            .unwrap_or(rest.len());
        let authority = &rest[..authority_len];
        let Some((userinfo, _)) = authority.rsplit_once('@') else {
            continue;
        };
        if let Some(colon) = userinfo.find(':') {
            hide[start + colon + 1..start + userinfo.len()]
                .iter_mut()
                .for_each(|h| *h = true);
        }
    }
}

/// The machine-readable report of `validate --json`.
pub fn json_report(
    diags: &Diagnostics,
    resources: Option<usize>,
    expanded: Option<&[ExpandedCluster]>,
) -> String {
    let errors = diags.errors().count();
    let mut doc = json!({
        "format_version": "1.0",
        "valid": errors == 0,
        "error_count": errors,
        "warning_count": diags.len() - errors,
        "resource_count": resources,
        "diagnostics": diags,
    });
    if let Some(rows) = expanded {
        doc["clusters"] = rows
            .iter()
            .map(|r| json!({"origin": r.origin, "cluster": r.cluster}))
            .collect();
    }
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// One cluster of a file after `clusterDefaults` and `clusterSets` are expanded.
#[derive(Debug, Clone)]
pub struct ExpandedCluster {
    /// The connected cluster's name.
    pub name: String,
    /// Its resource group.
    pub resource_group: String,
    /// Its region (its own, else its group's).
    pub location: Option<String>,
    /// Its kubeconfig context.
    pub context: Option<String>,
    /// `file:line` it came from.
    pub origin: String,
    /// The whole expanded entry.
    pub cluster: serde_json::Value,
}

/// The expanded clusters as an aligned table, one row each, with where each came from.
pub fn expansion_table(rows: &[ExpandedCluster]) -> String {
    let w = |f: &dyn Fn(&ExpandedCluster) -> usize, title: usize| {
        rows.iter().map(f).max().unwrap_or(0).max(title)
    };
    let (wn, wg, wl, wc) = (
        w(&|r| r.name.len(), 7),
        w(&|r| r.resource_group.len(), 14),
        w(&|r| r.location.as_deref().map_or(1, str::len), 8),
        w(&|r| r.context.as_deref().map_or(1, str::len), 7),
    );
    let mut out = format!(
        "{} cluster{} after expansion:\n{:wn$}  {:wg$}  {:wl$}  {:wc$}  FROM\n",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        "CLUSTER",
        "RESOURCE GROUP",
        "LOCATION",
        "CONTEXT",
    );
    for r in rows {
        out.push_str(&format!(
            "{:wn$}  {:wg$}  {:wl$}  {:wc$}  {}\n",
            r.name,
            r.resource_group,
            r.location.as_deref().unwrap_or("-"),
            r.context.as_deref().unwrap_or("-"),
            r.origin,
        ));
    }
    out
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

    #[test]
    fn secrets_are_masked_lexically_char_for_char() {
        let cases = [
            (
                "    clientSecret: 987654321123\n",
                "    clientSecret: ************\n",
            ),
            (
                "  - clientSecret: \"Unclosed77\nnext: 1",
                "  - clientSecret: ***********\nnext: 1",
            ),
            (
                "a: { clientSecret: x y, b: 1 }",
                "a: { clientSecret: ***, b: 1 }",
            ),
            ("\"credentials\": 's''q' # c", "\"credentials\": ****** # c"),
            ("password: \"a\\\"b\" x", "password: ****** x"),
            ("clientSecret: { env: X }", "clientSecret: { env: X }"),
            ("notclientSecret: x", "notclientSecret: x"),
            (
                "  clientSecret: |\n    L1\n\n    L2\n  bogus: 1",
                "  clientSecret: |\n    **\n\n    **\n  bogus: 1",
            ),
            ("p: http://al:pw@h:3128/x", "p: http://al:**@h:3128/x"),
            ("p: https://h.example/a@b", "p: https://h.example/a@b"),
        ];
        for (text, want) in cases {
            let got = mask_secrets(text, &[]);
            assert_eq!(got, want, "{text:?}");
            assert_eq!(got.chars().count(), text.chars().count());
        }
    }

    #[test]
    fn flagged_spans_stop_at_the_last_visible_character() {
        // The span of a block scalar runs into the next line's indentation.
        let text = "k: |\n  s3cr\u{e9}t\n  bogus: 1\n";
        let span = 7..17;
        let got = mask_secrets(text, std::slice::from_ref(&span));
        assert_eq!(got, "k: |\n  ******\n  bogus: 1\n");
    }
}
