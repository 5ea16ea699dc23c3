//! Diagnostics: errors and warnings that point into the desired-state file.
//!
//! Parsing, validation, graph building and planning never stop at the first problem: they return
//! a value together with [`Diagnostics`], so a user sees every mistake in one run. A diagnostic
//! says *what* is wrong, *where* (file, line, column and the key path), and *what to do next*.
//!
//! This module only models diagnostics; rendering them (with colour, snippets or JSON) is the
//! CLI's job.

use serde::Serialize;
use std::fmt;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The run can go on; the user should look.
    Warning,
    /// The run cannot go on.
    Error,
}

/// A position in a source file, 1-based like editors show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceLocation {
    /// The file as the user named it.
    pub file: String,
    /// Line, starting at 1.
    pub line: u64,
    /// Column in characters, starting at 1.
    pub column: u64,
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One problem found in the configuration, the graph or the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A stable, kebab-case identifier of the kind of problem (for example `unknown-key`).
    pub code: &'static str,
    /// One sentence saying what is wrong. Never contains a secret value.
    pub message: String,
    /// Where in the file, when known (boxed: diagnostics travel in `Err` values, and most have
    /// no location).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Box<SourceLocation>>,
    /// The key path in the document, for example `clusters[0].agents.timeout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The resource address concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// What to do next ("did you mean ...?", the allowed values, the command to run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Byte ranges of the source that hold a secret value this diagnostic is about. Renderers
    /// hide them in every snippet of the file ([`masked_source`]); never serialised.
    #[serde(skip)]
    pub secret_spans: Vec<std::ops::Range<usize>>,
}

impl Diagnostic {
    /// An error with a code and a message; add the rest with the `with_*` methods.
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            message: message.into(),
            location: None,
            key: None,
            address: None,
            hint: None,
            secret_spans: Vec::new(),
        }
    }

    /// A warning with a code and a message.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, message)
        }
    }

    /// Sets where the problem is.
    pub fn with_location(mut self, location: Option<SourceLocation>) -> Self {
        self.location = location.map(Box::new);
        self
    }

    /// Sets the key path.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the resource address.
    pub fn with_address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// Sets the hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Marks a byte range of the source as a secret value, to be hidden in snippets.
    pub fn with_secret_span(mut self, span: Option<std::ops::Range<usize>>) -> Self {
        self.secret_spans.extend(span);
        self
    }
}

/// True for the characters YAML (and so the positions in diagnostics) count as line breaks.
fn is_break(c: char) -> bool {
    c == '\n' || c == '\r'
}

/// Line `line` (1-based) of `text`, without its line break, counting lines as the YAML parser
/// does (`\n`, `\r\n` and a lone `\r` end a line; U+0085, U+2028 and U+2029 do not).
pub fn source_line(text: &str, line: u64) -> Option<&str> {
    let mut start = 0;
    let mut n = 1;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' || bytes[i] == b'\r' {
            if n == line {
                return Some(&text[start..i]);
            }
            if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
            n += 1;
            start = i + 1;
        }
        i += 1;
    }
    (n == line && start <= text.len()).then(|| &text[start..])
}

/// `source` with every secret span of `diags` replaced by `*`, character for character (line
/// breaks kept), so lines and columns stay where the diagnostics point.
pub fn masked_source(source: &str, diags: &Diagnostics) -> String {
    let spans: Vec<&std::ops::Range<usize>> =
        diags.iter().flat_map(|d| d.secret_spans.iter()).collect();
    if spans.is_empty() {
        return source.to_owned();
    }
    source
        .char_indices()
        .map(|(i, c)| {
            if !is_break(c) && spans.iter().any(|s| s.contains(&i)) {
                '*'
            } else {
                c
            }
        })
        .collect()
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if let Some(loc) = &self.location {
            write!(f, "{loc}: ")?;
        }
        write!(f, "{sev}[{}]: {}", self.code, self.message)?;
        if let Some(key) = &self.key {
            write!(f, " (at `{key}`)")?;
        }
        if let Some(address) = &self.address {
            write!(f, " [{address}]")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

/// An ordered collection of diagnostics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    /// No diagnostics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one diagnostic.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    /// Adds all of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    /// True when at least one diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    /// True when there is nothing at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of diagnostics.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Iterates in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// Errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Error)
    }

    /// Sorts by file position (diagnostics without a location last), keeping insertion order
    /// for ties, so output follows the file top to bottom.
    pub fn sort_by_location(&mut self) {
        self.0.sort_by_key(|d| {
            d.location
                .as_ref()
                .map(|l| (0, l.line, l.column))
                .unwrap_or((1, 0, 0))
        });
    }

    /// The diagnostics as a vector.
    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.0
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Self(vec![d])
    }
}

impl From<Vec<Diagnostic>> for Diagnostics {
    fn from(v: Vec<Diagnostic>) -> Self {
        Self(v)
    }
}

impl FromIterator<Diagnostic> for Diagnostics {
    fn from_iter<I: IntoIterator<Item = Diagnostic>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The closest candidate to `input` among `candidates`, if one is close enough to be a likely
/// misspelling (Jaro-Winkler similarity of at least 0.8, or a case-only difference).
pub fn did_you_mean<'a, I>(input: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = input.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            let score = if c.to_ascii_lowercase() == lower {
                1.0
            } else {
                strsim::jaro_winkler(&lower, &c.to_ascii_lowercase())
            };
            (c, score)
        })
        .filter(|(_, s)| *s >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        let keys = ["resourceGroup", "location", "kubeconfig", "context"];
        assert_eq!(did_you_mean("resourceGroupp", keys), Some("resourceGroup"));
        assert_eq!(did_you_mean("locaton", keys), Some("location"));
        assert_eq!(did_you_mean("ResourceGroup", keys), Some("resourceGroup"));
        assert_eq!(did_you_mean("zzz", keys), None);
    }

    #[test]
    fn lines_are_counted_as_yaml_counts_them() {
        let text = "a\r\nb\rc\u{85}d\u{2028}e\n\nf";
        assert_eq!(source_line(text, 1), Some("a"));
        assert_eq!(source_line(text, 2), Some("b"));
        assert_eq!(source_line(text, 3), Some("c\u{85}d\u{2028}e"));
        assert_eq!(source_line(text, 4), Some(""));
        assert_eq!(source_line(text, 5), Some("f"));
        assert_eq!(source_line(text, 6), None);
        assert_eq!(source_line("x\n", 2), Some(""));
    }

    #[test]
    fn secret_spans_are_masked_char_for_char() {
        let text = "k: \"s3cr\u{e9}t\"\nnext: 1\n";
        let d = Diagnostic::error("inline-secret", "x").with_secret_span(Some(3..12));
        let masked = masked_source(text, &d.into());
        assert_eq!(masked, "k: ********\nnext: 1\n");
        assert_eq!(masked.chars().count(), text.chars().count());
    }

    #[test]
    fn sorts_by_position_with_unlocated_last() {
        let at = |line| {
            Some(SourceLocation {
                file: "f".into(),
                line,
                column: 1,
            })
        };
        let mut d = Diagnostics::new();
        d.push(Diagnostic::error("a", "none"));
        d.push(Diagnostic::error("b", "late").with_location(at(9)));
        d.push(Diagnostic::error("c", "early").with_location(at(2)));
        d.sort_by_location();
        let codes: Vec<_> = d.iter().map(|d| d.code).collect();
        assert_eq!(codes, ["c", "b", "a"]);
    }
}
