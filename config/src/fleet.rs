//! Fleets in one reviewable file: `clusterDefaults` (every cluster field, overridden per
//! cluster) and `clusterSets`, clusters generated from an inventory file (CSV or YAML) or from
//! the contexts of a kubeconfig that match a pattern.
//!
//! The expansion works on the position-carrying tree, before the schema sees it, so every later
//! stage checks the expanded clusters and points at where each value came from: a value of
//! `clusterDefaults` at its line in the desired-state file, a value of an inventory row at the
//! row (`stores.csv:13:7`; [`Pos::file`] names the file). It is deterministic: the declared
//! `clusters` first, then each set in order, its rows in file order (contexts by name).
//! Merging: mappings merge key by key, the more specific side winning (a set's `defaults` over
//! `clusterDefaults`, a cluster's own fields over both); lists and values are replaced.

use super::loaded::Files;
use super::yaml::{Key, Node, Path, Pos, Value};
use arcplan_engine::diag::{Diagnostic, Diagnostics};
use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};

/// What the expansion produced besides the tree.
#[derive(Debug, Default)]
pub(crate) struct Expansion {
    /// Where each generated cluster (by index in `clusters`) came from, as `file:line`.
    pub origins: BTreeMap<usize, String>,
    /// The text of every file read, for the configuration's digest.
    pub texts: Vec<String>,
}

/// Expands `clusterDefaults` and `clusterSets` into the tree's `clusters`. `base` is the
/// desired-state file's directory; files read are added to `files`.
pub(crate) fn expand(
    tree: &mut Node,
    files: &mut Files,
    base: &FsPath,
) -> (Diagnostics, Expansion) {
    let mut diags = Diagnostics::new();
    let mut out = Expansion::default();
    let root = Path::root();
    let defaults = tree
        .get(&root.key("clusterDefaults"))
        .filter(|n| matches!(n.value, Value::Map(_)))
        .cloned();
    let sets = match tree.get(&root.key("clusterSets")).map(|n| &n.value) {
        Some(Value::Seq(items)) => items.clone(),
        _ => Vec::new(),
    };
    if defaults.is_none() && sets.is_empty() {
        return (diags, out);
    }
    let mut generated: Vec<(Node, String)> = Vec::new();
    for (j, set) in sets.iter().enumerate() {
        let at = root.key("clusterSets").index(j);
        let text = |k: &str| match set.child(&super::yaml::Seg::Key(k.into())) {
            Some(Node {
                value: Value::Str(s),
                ..
            }) => Some(s.clone()),
            _ => None,
        };
        let rows = match (text("inventory"), text("kubeconfig"), text("contexts")) {
            (Some(inv), None, None) => inventory_rows(&inv, base, files, &mut out, &at),
            (None, Some(kc), Some(pattern)) => context_rows(&kc, &pattern, base, files, &mut out),
            _ => Err(Diagnostic::error(
                "invalid-cluster-set",
                "a cluster set names one source: `inventory`, or `kubeconfig` with `contexts`",
            )
            .with_location(Some(files.location(set.pos)))
            .with_key(at.to_string())
            .with_hint("split it into one set per source")),
        };
        let rows = match rows {
            Ok(rows) => rows,
            Err(mut d) => {
                if d.key.is_none() {
                    d = d.with_key(at.to_string());
                }
                if d.location.is_none() {
                    d = d.with_location(Some(files.location(set.pos)));
                }
                diags.push(d);
                continue;
            }
        };
        let set_defaults = set.child(&super::yaml::Seg::Key("defaults".into()));
        for (row, origin) in rows {
            let merged = match set_defaults {
                Some(d) => merge(d, &row),
                None => row,
            };
            generated.push((merged, origin));
        }
    }
    let Value::Map(entries) = &mut tree.value else {
        return (diags, out);
    };
    if !entries.iter().any(|(k, _)| k.name == "clusters") {
        entries.push((
            Key {
                name: "clusters".into(),
                pos: tree.pos,
            },
            Node {
                pos: tree.pos,
                value: Value::Seq(Vec::new()),
                bytes: None,
            },
        ));
    }
    let Some((_, clusters)) = entries.iter_mut().find(|(k, _)| k.name == "clusters") else {
        return (diags, out);
    };
    let Value::Seq(items) = &mut clusters.value else {
        return (diags, out);
    };
    for (row, origin) in generated {
        out.origins.insert(items.len(), origin);
        items.push(row);
    }
    if let Some(d) = &defaults {
        for item in items.iter_mut() {
            *item = merge(d, item);
        }
    }
    (diags, out)
}

/// `over` on top of `base`: mappings merge key by key (`over` wins), anything else is `over`.
fn merge(base: &Node, over: &Node) -> Node {
    match (&base.value, &over.value) {
        (Value::Map(b), Value::Map(o)) => {
            let mut entries: Vec<(Key, Node)> = b
                .iter()
                .map(|(k, v)| match o.iter().find(|(ok, _)| ok.name == k.name) {
                    Some((ok, ov)) => (ok.clone(), merge(v, ov)),
                    None => (k.clone(), v.clone()),
                })
                .collect();
            for (k, v) in o {
                if !b.iter().any(|(bk, _)| bk.name == k.name) {
                    entries.push((k.clone(), v.clone()));
                }
            }
            Node {
                pos: over.pos,
                value: Value::Map(entries),
                bytes: over.bytes.clone(),
            }
        }
        _ => over.clone(),
    }
}

/// A path named in the file: `~/` is the home directory, a relative path is taken from the
/// desired-state file's directory.
fn resolve(base: &FsPath, name: &str) -> PathBuf {
    if let Some(rest) = name.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    if base.as_os_str().is_empty() {
        PathBuf::from(name)
    } else {
        base.join(name)
    }
}

/// Reads a file the set names, registering it in `files`; returns its index and text.
fn read(
    base: &FsPath,
    name: &str,
    what: &str,
    files: &mut Files,
    out: &mut Expansion,
) -> Result<(u16, String), Diagnostic> {
    let path = resolve(base, name);
    let shown = path.display().to_string();
    let bytes = super::load::read_file(&path).map_err(|d| {
        let first = d.iter().next().cloned();
        Diagnostic::error(
            "unreadable-inventory",
            format!(
                "cannot read the {what} {shown}: {}",
                first.map(|d| d.message).unwrap_or_default()
            ),
        )
        .with_hint("paths are taken from the desired-state file's directory (or `~/`)")
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Diagnostic::error(
            "unreadable-inventory",
            format!("the {what} {shown} is not UTF-8 text"),
        )
    })?;
    let index = u16::try_from(files.0.len()).map_err(|_| {
        Diagnostic::error(
            "unreadable-inventory",
            "too many inventory files (over 65,535)",
        )
    })?;
    files.0.push(shown);
    out.texts.push(text.clone());
    Ok((index, text))
}

type Rows = Vec<(Node, String)>;

fn inventory_rows(
    name: &str,
    base: &FsPath,
    files: &mut Files,
    out: &mut Expansion,
    at: &Path,
) -> Result<Rows, Diagnostic> {
    let (file, text) = read(base, name, "inventory", files, out)
        .map_err(|d| d.with_key(at.key("inventory").to_string()))?;
    let shown = files.0[usize::from(file)].clone();
    if name.to_ascii_lowercase().ends_with(".csv") {
        return csv_rows(&text, file, &shown);
    }
    let mut doc: Node = serde_saphyr::from_str(&text).map_err(|e| {
        Diagnostic::error(
            "invalid-inventory",
            format!("{shown}: invalid YAML: {}", e.without_snippet()),
        )
    })?;
    set_file(&mut doc, file);
    let list = match doc.value {
        Value::Seq(items) => items,
        Value::Map(_) => match doc.get(&Path::root().key("clusters")).map(|n| &n.value) {
            Some(Value::Seq(items)) => items.clone(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    if list.is_empty() {
        return Err(Diagnostic::error(
            "invalid-inventory",
            format!("{shown} holds no clusters: a YAML inventory is a list of cluster entries, or a mapping with `clusters:`"),
        )
        .with_location(Some(files.location(doc.pos)))
        .with_key(at.key("inventory").to_string()));
    }
    Ok(list
        .into_iter()
        .map(|n| {
            let origin = format!("{shown}:{}", n.pos.line.max(1));
            (n, origin)
        })
        .collect())
}

fn set_file(n: &mut Node, file: u16) {
    n.pos.file = file;
    n.bytes = None;
    match &mut n.value {
        Value::Seq(items) => items.iter_mut().for_each(|i| set_file(i, file)),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            k.pos.file = file;
            set_file(v, file);
        }),
        _ => {}
    }
}

/// One cluster entry per CSV row: the header names the fields (dotted for nested ones), empty
/// cells are left out, `true`/`false` are booleans.
fn csv_rows(text: &str, file: u16, shown: &str) -> Result<Rows, Diagnostic> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        // A row may leave out trailing empty cells; one with more cells than the header is an
        // error below.
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let bad = |line: u64, message: String| {
        Diagnostic::error("invalid-inventory", format!("{shown}:{line}: {message}")).with_location(
            Some(arcplan_engine::diag::SourceLocation {
                file: shown.to_owned(),
                line: line.max(1),
                column: 1,
            }),
        )
    };
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| bad(1, e.to_string()))?
        .iter()
        .map(str::to_owned)
        .collect();
    if let Some(h) = headers
        .iter()
        .find(|h| h.is_empty() || h.split('.').any(str::is_empty))
    {
        return Err(bad(1, format!("the header names an empty field (`{h}`)"))
            .with_hint("the header row names cluster fields: name,resourceGroup,location,context,tags.store,..."));
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            bad(line, e.to_string())
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.len() > headers.len() {
            return Err(bad(
                line,
                format!(
                    "the row has {} cells, the header names {} fields",
                    record.len(),
                    headers.len()
                ),
            ));
        }
        let columns = field_columns(
            lines
                .get(line.saturating_sub(1) as usize)
                .copied()
                .unwrap_or(""),
        );
        let at = |i: usize| Pos {
            line,
            column: columns.get(i).copied().unwrap_or(1),
            file,
        };
        let mut row = Node {
            pos: at(0),
            value: Value::Map(Vec::new()),
            bytes: None,
        };
        for (i, (h, cell)) in headers.iter().zip(record.iter()).enumerate() {
            if cell.is_empty() {
                continue;
            }
            let value = match cell {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                s => Value::Str(s.to_owned()),
            };
            insert(&mut row, h.split('.'), at(i), value);
        }
        rows.push((row, format!("{shown}:{line}")));
    }
    Ok(rows)
}

/// Sets `value` at the dotted `key` of a mapping node, creating the mappings on the way.
fn insert<'a>(node: &mut Node, mut key: impl Iterator<Item = &'a str>, pos: Pos, value: Value) {
    let Some(k) = key.next() else {
        node.value = value;
        return;
    };
    if !matches!(node.value, Value::Map(_)) {
        node.value = Value::Map(Vec::new());
    }
    let Value::Map(entries) = &mut node.value else {
        return;
    };
    let i = match entries.iter().position(|(e, _)| e.name == k) {
        Some(i) => i,
        None => {
            entries.push((
                Key {
                    name: k.to_owned(),
                    pos,
                },
                Node {
                    pos,
                    value: Value::Map(Vec::new()),
                    bytes: None,
                },
            ));
            entries.len() - 1
        }
    };
    insert(&mut entries[i].1, key, pos, value);
}

/// The 1-based column where each comma-separated field of a CSV line starts (quotes respected).
fn field_columns(line: &str) -> Vec<u64> {
    let mut out = vec![1];
    let mut quoted = false;
    for (i, c) in line.chars().enumerate() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(i as u64 + 2),
            _ => {}
        }
    }
    out
}

/// One cluster per context of the kubeconfig matching the pattern, named after it, in name order.
fn context_rows(
    kubeconfig: &str,
    pattern: &str,
    base: &FsPath,
    files: &mut Files,
    out: &mut Expansion,
) -> Result<Rows, Diagnostic> {
    let (file, text) = read(base, kubeconfig, "kubeconfig", files, out)?;
    let shown = files.0[usize::from(file)].clone();
    let mut doc: Node = serde_saphyr::from_str(&text).map_err(|e| {
        Diagnostic::error(
            "invalid-inventory",
            format!("{shown}: invalid kubeconfig YAML: {}", e.without_snippet()),
        )
    })?;
    set_file(&mut doc, file);
    let matcher = wildmatch::WildMatch::new(pattern);
    let mut found: Vec<(String, Pos)> =
        match doc.get(&Path::root().key("contexts")).map(|n| &n.value) {
            Some(Value::Seq(items)) => items
                .iter()
                .filter_map(|c| match c.get(&Path::root().key("name")) {
                    Some(Node {
                        value: Value::Str(name),
                        pos,
                        ..
                    }) => Some((name.clone(), *pos)),
                    _ => None,
                })
                .filter(|(name, _)| matcher.matches(name))
                .collect(),
            _ => Vec::new(),
        };
    found.sort_by(|a, b| a.0.cmp(&b.0));
    if found.is_empty() {
        return Err(Diagnostic::error(
            "empty-cluster-set",
            format!("no context of {shown} matches `{pattern}`"),
        )
        .with_hint(format!(
            "`kubectl config get-contexts --kubeconfig {kubeconfig}` lists them"
        )));
    }
    Ok(found
        .into_iter()
        .map(|(name, pos)| {
            let s = |v: &str| Node {
                pos,
                value: Value::Str(v.to_owned()),
                bytes: None,
            };
            let key = |k: &str| Key {
                name: k.to_owned(),
                pos,
            };
            let row = Node {
                pos,
                value: Value::Map(vec![
                    (key("name"), s(&name)),
                    (key("kubeconfig"), s(kubeconfig)),
                    (key("context"), s(&name)),
                ]),
                bytes: None,
            };
            (row, format!("{shown}:{} (context {name})", pos.line.max(1)))
        })
        .collect())
}
