//! Reading a desired-state file into a validated [`Config`].

use super::loaded::{Files, Loaded};
use super::yaml::{MAX_DEPTH, MAX_FILE_BYTES, Node, Value};
use super::{Config, fleet, salvage, schema, validate};
use arcplan_engine::diag::{Diagnostic, Diagnostics, SourceLocation};

/// Reads and loads a file. I/O errors become a diagnostic naming the file.
pub fn load_file(path: &std::path::Path) -> Result<Loaded, Diagnostics> {
    let bytes = read_file(path)?;
    load_bytes(&bytes, &path.display().to_string())
}

/// Reads a desired-state file's bytes: a regular file only (a directory, FIFO, socket or device,
/// `/dev/stdin` included, is refused before it is opened for reading, so nothing blocks), and
/// at most [`MAX_FILE_BYTES`] (the read itself is bounded, whatever size the file reports).
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>, Diagnostics> {
    match read_regular(path, MAX_FILE_BYTES)? {
        Some(bytes) => Ok(bytes),
        None => {
            let len = std::fs::metadata(path).ok().map(|m| m.len());
            Err(too_large(
                &path.display().to_string(),
                len.filter(|l| *l > MAX_FILE_BYTES as u64),
            )
            .into())
        }
    }
}

/// Reads the bytes of a regular file of at most `limit` bytes (`None`: it is larger). Anything
/// else (a directory, FIFO, socket or device, `/dev/stdin` included) is refused before it is
/// opened for reading, so nothing blocks, and the read itself is bounded, whatever size the
/// file reports. Desired-state files and saved plans are read this way.
pub fn read_regular(path: &std::path::Path, limit: usize) -> Result<Option<Vec<u8>>, Diagnostics> {
    use std::io::Read;
    let file = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| io_error(&file, &e))?;
    check_regular(&file, &meta)?;
    if meta.len() > limit as u64 {
        return Ok(None);
    }
    let handle = std::fs::File::open(path).map_err(|e| io_error(&file, &e))?;
    // The path may have been replaced between the two looks: check what was opened.
    check_regular(&file, &handle.metadata().map_err(|e| io_error(&file, &e))?)?;
    let mut bytes = Vec::new();
    handle
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(&file, &e))?;
    Ok((bytes.len() <= limit).then_some(bytes))
}

/// The text of a desired-state file for snippets, read under the same rules as [`read_file`];
/// `None` when it cannot be read that way.
pub fn read_source(path: &std::path::Path) -> Option<String> {
    read_file(path).ok().and_then(|b| String::from_utf8(b).ok())
}

fn check_regular(file: &str, meta: &std::fs::Metadata) -> Result<(), Diagnostics> {
    if meta.is_dir() {
        return Err(
            Diagnostic::error("io", format!("{file} is a directory, not a file"))
                .with_hint("name the desired-state YAML file, for example examples/quickstart.yaml")
                .into(),
        );
    }
    if !meta.is_file() {
        let what = file_kind(meta);
        return Err(Diagnostic::error(
            "not-a-file",
            format!("{file} is {what}, not a regular file"),
        )
        .with_hint("arcplan reads its files (the desired state, saved plans) from regular files only, not a pipe, device or standard input; write it to a file and name that")
        .into());
    }
    Ok(())
}

fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    let _ = meta;
    "not a regular file"
}

fn io_error(file: &str, e: &std::io::Error) -> Diagnostics {
    let hint = match e.kind() {
        std::io::ErrorKind::NotFound => "check the path, or pass the file with -f",
        std::io::ErrorKind::PermissionDenied => "check the file's permissions",
        _ => "check that the file is readable",
    };
    Diagnostic::error("io", format!("cannot read {file}: {e}"))
        .with_hint(hint)
        .into()
}

fn too_large(file: &str, len: Option<u64>) -> Diagnostic {
    let size = match len {
        Some(len) => format!("{:.1} MiB", len as f64 / (1024.0 * 1024.0)),
        None => format!("over {} MiB", MAX_FILE_BYTES / (1024 * 1024)),
    };
    Diagnostic::error(
        "file-too-large",
        format!(
            "{file} is {size}; desired-state files are limited to {} MiB",
            MAX_FILE_BYTES / (1024 * 1024)
        ),
    )
    .with_hint("a 500-cluster fleet is about 150 KiB; check that this is the right file")
}

/// Loads raw bytes (checking they are text first).
pub fn load_bytes(bytes: &[u8], file: &str) -> Result<Loaded, Diagnostics> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(too_large(file, Some(bytes.len() as u64)).into());
    }
    if let Some(at) = bytes.iter().position(|b| *b == 0) {
        return Err(not_text(file, at).into());
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => load_str(text, file),
        Err(e) => Err(not_text(file, e.valid_up_to()).into()),
    }
}

fn not_text(file: &str, at: usize) -> Diagnostic {
    Diagnostic::error(
        "not-text",
        format!("{file} is not a UTF-8 text file (invalid byte at offset {at})"),
    )
    .with_hint("desired-state files are YAML text; check that this is the right file")
}

/// Loads a document from text. `file` names it in diagnostics.
pub fn load_str(text: &str, file: &str) -> Result<Loaded, Diagnostics> {
    if text.len() > MAX_FILE_BYTES {
        return Err(too_large(file, Some(text.len() as u64)).into());
    }
    let mut tree = parse_tree(text, file)?;
    let mut files = Files(vec![file.to_owned()]);
    let mut diags = Diagnostics::new();
    // Before the expansion: a secret written in `clusterDefaults` is reported once, not per
    // cluster.
    diags.extend(validate::inline_secrets(&tree, &files, text));
    let secret_paths: Vec<String> = diags.iter().filter_map(|d| d.key.clone()).collect();
    let base = std::path::Path::new(file)
        .parent()
        .unwrap_or(std::path::Path::new(""));
    let (expanded, expansion) = fleet::expand(&mut tree, &mut files, base);
    diags.extend(expanded);
    // A secret written in an inventory row.
    if !expansion.texts.is_empty() {
        let main = files.0.first().cloned().unwrap_or_default();
        for d in validate::inline_secrets(&tree, &files, text) {
            if d.location.as_ref().is_some_and(|l| l.file != main) {
                diags.push(d);
            }
        }
    }
    let (structural, broken) = schema::check(&tree, &files);
    let structural = collapse_repeats(structural);
    for d in structural {
        // An inline secret is already reported with a precise message; the schema's type error
        // about the same key would only repeat it.
        let repeats = d
            .key
            .as_ref()
            .is_some_and(|k| secret_paths.iter().any(|s| k.starts_with(s.as_str())));
        if !repeats {
            diags.push(d);
        }
    }
    let rejected = diags.has_errors();
    let config: Config =
        if rejected {
            // Check the rest of the document too, so one run shows every problem.
            match salvage::salvage(tree.to_json(), &broken) {
                Some(c) => c,
                None => {
                    diags.sort_by_location();
                    return Err(diags);
                }
            }
        } else {
            match serde_json::from_value(tree.to_json()) {
                Ok(c) => c,
                Err(e) => {
                    // The schema accepted the document, so this is a gap between schema and types.
                    // serde_json's message names the field but never holds a whole secret value.
                    return Err(Diagnostic::error("invalid-document", format!("{file}: {e}"))
                    .with_hint(
                        "the document passed the schema but not the types; please report this",
                    )
                    .into());
                }
            }
        };
    let mut all = text.to_owned();
    for t in &expansion.texts {
        all.push('\0');
        all.push_str(t);
    }
    let mut loaded = Loaded {
        file: file.to_owned(),
        config,
        digest: digest(&all),
        tree,
        warnings: Diagnostics::new(),
        files,
        origins: expansion.origins,
    };
    let sem = collapse_repeats(validate::validate(&loaded));
    if rejected {
        // A finding about a set-aside path would describe a placeholder, not the file.
        for d in sem {
            let about_broken = d
                .key
                .as_ref()
                .is_some_and(|k| broken.iter().any(|b| salvage::related(k, b)));
            if !about_broken {
                diags.push(d);
            }
        }
        diags.sort_by_location();
        return Err(diags);
    }
    let mut sem = sem;
    sem.sort_by_location();
    if sem.has_errors() {
        return Err(sem);
    }
    loaded.warnings = sem;
    Ok(loaded)
}

fn parse_tree(text: &str, file: &str) -> Result<Node, Diagnostics> {
    let meaningful = text.lines().any(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#') && t != "---" && t != "..."
    });
    if !meaningful {
        return Err(Diagnostic::error("empty-file", format!("{file} has no content"))
            .with_hint("a desired-state file starts with `apiVersion: arcplan/v1`; see examples/quickstart.yaml")
            .into());
    }
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            max_nodes: 200_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_documents: 1,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 16,
        },
        with_snippet: false,
    };
    let tree: Node = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let location = e.location().map(|l| SourceLocation {
            file: file.to_owned(),
            line: l.line().max(1),
            column: l.column().max(1),
        });
        let message = e.without_snippet().to_string();
        let lower = message.to_ascii_lowercase();
        let (code, hint) = if ["budget", "alias", "depth", "recursion", "limit"].iter().any(|w| lower.contains(w)) {
            (
                "yaml-limits",
                format!("the document exceeds the parser's safety limits (nesting over {MAX_DEPTH} levels, over 1,000 aliases, or alias expansion over 100,000 events); desired-state files need none of that"),
            )
        } else if lower.contains("multiple") && lower.contains("document") {
            ("yaml-syntax", "put one document per file (remove `---` separators)".to_owned())
        } else {
            ("yaml-syntax", "fix the YAML syntax at this position".to_owned())
        };
        Diagnostics::from(
            Diagnostic::error(code, format!("invalid YAML: {}", first_line(&message)))
                .with_location(location)
                .with_hint(hint),
        )
    })?;
    match &tree.value {
        Value::Map(_) => Ok(tree),
        other => Err(Diagnostic::error(
            "invalid-type",
            format!("the document must be a mapping, not {}", other.kind()),
        )
        .with_location(Some(SourceLocation {
            file: file.to_owned(),
            line: tree.pos.line.max(1),
            column: tree.pos.column.max(1),
        }))
        .with_hint("start the file with `apiVersion: arcplan/v1`")
        .into()),
    }
}

/// One diagnostic per problem: a value every generated cluster took from `clusterDefaults` is
/// reported once, at that value, saying how many clusters have it (same code, same place).
fn collapse_repeats(diags: Diagnostics) -> Diagnostics {
    let mut out: Vec<(Diagnostic, usize)> = Vec::new();
    let mut at: std::collections::HashMap<(&'static str, String), usize> =
        std::collections::HashMap::new();
    for d in diags {
        let Some(l) = &d.location else {
            out.push((d, 1));
            continue;
        };
        let key = (d.code, l.to_string());
        match at.get(&key) {
            Some(&i) => out[i].1 += 1,
            None => {
                at.insert(key, out.len());
                out.push((d, 1));
            }
        }
    }
    out.into_iter()
        .map(|(mut d, n)| {
            if n > 1 {
                d.message = format!("{} (and the same in {} more clusters)", d.message, n - 1);
            }
            d
        })
        .collect()
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn digest(text: &str) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(text.as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}
