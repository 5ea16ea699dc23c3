//! The Kubernetes fan-out example (`examples/k8s/indexed-job.yaml`): the real kubectl accepts it
//! with a server-side dry run against the sandbox's Kubernetes API, its completion indexes map to
//! shards 1..N of N, and the Job's completions are the N of its `--shard`.

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;

fn manifests(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    text.split("\n---\n")
        .map(|doc| serde_saphyr::from_str::<Value>(doc).expect("a manifest"))
        .collect()
}

#[test]
fn each_completion_index_is_one_shard() {
    let docs = manifests("examples/k8s/indexed-job.yaml");
    let job = docs.iter().find(|d| d["kind"] == "Job").expect("a Job");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    let n = job["spec"]["completions"].as_u64().unwrap();
    assert_eq!(
        job["spec"]["parallelism"].as_u64(),
        Some(n),
        "every shard at once"
    );
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let command: Vec<&str> = pod["containers"][0]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(&command[..2], ["sh", "-c"]);
    // The pod's shell turns JOB_COMPLETION_INDEX into --shard K/N: run it with `arcplan` standing
    // for a function that prints its arguments.
    for index in 0..n {
        let script = format!(
            "arcplan() {{ echo \"$@\"; }}; {}",
            command[2].replacen("exec ", "", 1)
        );
        let o = Command::new("sh")
            .args(["-c", &script])
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .output()
            .unwrap();
        let args = String::from_utf8_lossy(&o.stdout);
        assert!(
            args.contains(&format!("--shard {}/{n} ", index + 1)),
            "index {index}: {args}"
        );
        assert!(args.starts_with("apply "), "{args}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_indexed_job_passes_a_server_side_dry_run() {
    let Some(kubectl_bin) = kubectl_path() else {
        return;
    };
    let w = World::start().await;
    let kubectl = |w: &World, args: &[&str]| w.kubectl(kubectl_bin, args);
    let file = root().join("examples/k8s/indexed-job.yaml");
    let file = file.to_str().unwrap();
    tokio::task::block_in_place(|| {
        // Without its namespace, the server refuses it (the README creates it first).
        let (ok, out) = kubectl(&w, &["apply", "--dry-run=server", "-f", file]);
        assert!(!ok, "{out}");
        assert!(out.contains("namespaces \"arcplan\" not found"), "{out}");
        let (ok, out) = kubectl(&w, &["create", "namespace", "arcplan"]);
        assert!(ok, "{out}");
        let (ok, out) = kubectl(&w, &["apply", "--dry-run=server", "-f", file]);
        assert!(ok, "{out}");
        assert!(
            out.contains("job.batch/arcplan-fleet created (server dry run)"),
            "{out}"
        );
        assert!(
            out.contains("serviceaccount/arcplan created (server dry run)"),
            "{out}"
        );
        // A dry run stores nothing.
        let (ok, out) = kubectl(&w, &["-n", "arcplan", "get", "jobs"]);
        assert!(ok, "{out}");
        assert!(!out.contains("arcplan-fleet"), "{out}");
        // The server refuses a Job a real one refuses: a pod that restarts forever.
        let bad = w.dir.join("always.yaml");
        let text = std::fs::read_to_string(file)
            .unwrap()
            .replace("restartPolicy: Never", "restartPolicy: Always");
        std::fs::write(&bad, text).unwrap();
        let (ok, out) = kubectl(
            &w,
            &["apply", "--dry-run=server", "-f", bad.to_str().unwrap()],
        );
        assert!(!ok, "{out}");
        assert!(
            out.contains("spec.template.spec.restartPolicy: Unsupported value: \"Always\""),
            "{out}"
        );
    });
}
