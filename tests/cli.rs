//! The real `arcplan` binary: exit codes, diagnostics with positions, JSON output, graph output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn arcplan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_arcplan"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .expect("arcplan runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("arcplan-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

#[test]
fn validate_accepts_the_quickstart() {
    let o = arcplan(&["validate", "examples/quickstart.yaml"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        out.contains("Success! examples/quickstart.yaml is valid"),
        "{out}"
    );
    assert!(err.is_empty(), "{err}");
}

#[test]
fn validate_reports_a_misspelt_key_with_position_and_suggestion() {
    let good = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart.yaml"),
    )
    .unwrap();
    let bad = temp_file(
        "misspelt.yaml",
        &good.replace("    resourceGroup: my", "    resourceGrop: my"),
    );
    let o = arcplan(&["validate", bad.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(
        err.contains(&format!("{}:26:5", bad.display())),
        "file:line:col missing:\n{err}"
    );
    assert!(err.contains("did you mean `resourceGroup`?"), "{err}");
    assert!(err.contains("unknown key `resourceGrop`"), "{err}");
    assert!(
        err.contains("2 errors found."),
        "the missing key is reported too:\n{err}"
    );
    assert!(!out.contains("Success"), "{out}");
}

#[test]
fn validate_json_is_machine_readable() {
    let bad = temp_file(
        "guid.yaml",
        "apiVersion: arcplan/v1\nstack: s\nazure:\n  subscription: 3000e2af-000-46d9-0000-4bdb12000000\n",
    );
    let o = arcplan(&["validate", "--json", "-f", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    assert_eq!(v["valid"], false);
    assert_eq!(v["error_count"], 1);
    let d = &v["diagnostics"][0];
    assert_eq!(d["code"], "invalid-guid");
    assert_eq!(d["location"]["line"], 4);
    assert_eq!(d["location"]["column"], 17);
    assert_eq!(d["key"], "azure.subscription");

    let ok = arcplan(&["validate", "--json", "examples/quickstart.yaml"]);
    assert_eq!(ok.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["resource_count"], 11);
}

#[test]
fn missing_and_unreadable_files_are_named() {
    let o = arcplan(&["validate", "no/such/file.yaml"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("cannot read no/such/file.yaml"), "{err}");
    assert!(err.contains("check the path"), "{err}");
}

#[test]
fn graph_dot_renders_with_graphviz() {
    let o = arcplan(&["graph", "--format", "dot", "examples/quickstart.yaml"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.starts_with("digraph arcplan {"));
    assert!(out.contains("\"k8s.onboardingKey.mynewcluster\" -> \"arc.connectedCluster.mynewcluster\" [style = \"dashed\"];"), "{out}");
    assert!(
        out.contains(
            "\"azure.resourceGroup.myAzureResourceGroup\" -> \"arc.connectedCluster.mynewcluster\";"
        ),
        "{out}"
    );
    match Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(out.as_bytes())
                .unwrap();
            let svg = child.wait_with_output().unwrap();
            assert!(svg.status.success(), "dot rejected the graph");
            assert!(String::from_utf8_lossy(&svg.stdout).contains("<svg"));
        }
        // CI installs graphviz (.ci/run), so there the check always runs.
        Err(_) => assert!(
            std::env::var_os("CI").is_none(),
            "graphviz `dot` is required in CI"
        ),
    }
}

#[test]
fn graph_mermaid_lists_every_node_and_edge() {
    let o = arcplan(&[
        "graph",
        "--format",
        "mermaid",
        "-f",
        "examples/quickstart.yaml",
    ]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(0));
    assert!(out.starts_with("flowchart LR\n"));
    assert_eq!(out.lines().filter(|l| l.contains("<br/>")).count(), 11);
    assert!(
        out.lines()
            .filter(|l| l.contains("-->") || l.contains("-.->"))
            .count()
            >= 12
    );
}

#[test]
fn help_version_and_usage_errors() {
    for args in [
        vec!["--help"],
        vec!["validate", "--help"],
        vec!["graph", "--help"],
        vec!["help", "graph"],
    ] {
        let o = arcplan(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Usage: arcplan"),
            "{args:?}"
        );
    }
    let o = arcplan(&["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("arcplan {}", env!("CARGO_PKG_VERSION"))
    );
    // Usage errors exit 1: exit code 2 is reserved for "changes present".
    let o = arcplan(&["graph", "--format", "png", "examples/quickstart.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("possible values: dot, mermaid"));
    assert_eq!(arcplan(&["frobnicate"]).status.code(), Some(1));
}

#[test]
fn every_command_has_an_example_and_prints_each_default_once() {
    for cmd in [
        "plan", "apply", "destroy", "show", "status", "validate", "graph", "sandbox",
    ] {
        let o = arcplan(&[cmd, "--help"]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{cmd}: {err}");
        let examples = out
            .split("Examples:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{cmd} --help has no Examples:\n{out}"));
        assert!(
            examples.contains(&format!("  arcplan {cmd} ")),
            "{cmd}: {examples}"
        );
        assert!(
            !out.contains("(default:"),
            "{cmd}: a default in the text and in [default: …]:\n{out}"
        );
        for line in out.lines() {
            assert!(line.matches("default").count() <= 1, "{cmd}: `{line}`");
        }
        if ["plan", "destroy", "status", "validate", "graph"].contains(&cmd) {
            assert!(
                out.contains("[FILE]"),
                "{cmd} takes a positional FILE:\n{out}"
            );
            assert_eq!(
                out.matches("[default: arcplan.yaml]").count(),
                1,
                "{cmd}:\n{out}"
            );
        }
    }
}

#[test]
fn plan_status_and_destroy_take_the_file_as_validate_does() {
    for cmd in ["plan", "status", "destroy", "apply", "validate", "graph"] {
        let o = arcplan(&[cmd, "no/such/fleet.yaml"]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {out}{err}");
        assert!(
            err.contains("cannot read no/such/fleet.yaml"),
            "{cmd} reads the positional file:\n{err}"
        );
        assert!(!err.contains("arcplan.yaml"), "{cmd}: {err}");
        let o = arcplan(&[cmd, "a.yaml", "-f", "b.yaml"]);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {err}");
        assert!(err.contains("error:"), "{cmd}: both FILE and -f: {err}");
    }
}

#[test]
fn the_schema_has_no_id_on_a_host_that_serves_nothing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("schemas/arcplan.schema.json")).unwrap(),
    )
    .unwrap();
    // An absolute `$id` makes editors resolve the schema there; none serves it.
    if let Some(id) = schema.get("$id").and_then(|v| v.as_str()) {
        assert!(!id.contains("://"), "absolute $id {id}");
    }
    // Every example finds the schema by a relative path.
    for e in std::fs::read_dir(root.join("examples")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") {
            let first = std::fs::read_to_string(&p).unwrap();
            let first = first.lines().next().unwrap_or("");
            assert_eq!(
                first,
                "# yaml-language-server: $schema=../schemas/arcplan.schema.json",
                "{}",
                p.display()
            );
        }
    }
}
