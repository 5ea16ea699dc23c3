//! Golden files under `tests/golden/`; `ARCPLAN_UPDATE_GOLDEN=1` rewrites them.

use similar::TextDiff;

/// Compares `actual` with `tests/golden/NAME`, or rewrites the file when asked.
pub(crate) fn check(name: &str, actual: &str) {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("ARCPLAN_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(format!("{}/tests/golden", env!("CARGO_MANIFEST_DIR"))).unwrap();
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
        panic!("{name} differs from its golden file (ARCPLAN_UPDATE_GOLDEN=1 to accept):\n{diff}");
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
