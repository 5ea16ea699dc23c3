//! The GitHub Actions example: the structural facts actionlint does not check (actionlint itself
//! runs on every workflow example in `.ci/run`).

use serde_json::Value;

fn workflow() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/ci/github-actions.yml"
    );
    let text = std::fs::read_to_string(path).expect("the workflow example");
    serde_saphyr::from_str(&text).expect("the workflow is YAML")
}

fn steps(job: &Value) -> Vec<&Value> {
    job["steps"].as_array().expect("steps").iter().collect()
}

fn runs(job: &Value) -> String {
    steps(job)
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn workflow_level_env_uses_only_contexts_github_allows_there() {
    // `runner` is not available in workflow-level `env:` (GitHub rejects the file).
    let w = workflow();
    for (k, v) in w["env"].as_object().expect("env") {
        let v = v.as_str().unwrap_or("");
        for ctx in ["runner.", "job.", "steps.", "env.", "matrix.", "needs."] {
            assert!(!v.contains(ctx), "env.{k} uses `{ctx}`: {v}");
        }
    }
}

#[test]
fn the_apply_job_applies_the_plan_file_the_plan_job_saved() {
    let w = workflow();
    let jobs = &w["jobs"];
    let plan = &jobs["plan"];
    let apply = &jobs["apply"];
    assert!(runs(plan).contains("--out arc.plan"), "{}", runs(plan));
    let uploaded = steps(plan).into_iter().any(|s| {
        s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("actions/upload-artifact"))
            && s["with"]["name"] == "arc-plan"
            && s["with"]["path"]
                .as_str()
                .is_some_and(|p| p.contains("arc.plan"))
    });
    assert!(uploaded, "the plan job uploads arc.plan as `arc-plan`");
    assert_eq!(apply["needs"], "plan");
    assert!(
        apply["environment"].is_string(),
        "apply waits for reviewers"
    );
    let downloaded = steps(apply).into_iter().any(|s| {
        s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("actions/download-artifact"))
            && s["with"]["name"] == "arc-plan"
    });
    assert!(
        downloaded,
        "the apply job downloads the `arc-plan` artifact"
    );
    let apply_runs = runs(apply);
    assert!(
        apply_runs.contains("arcplan apply arc.plan"),
        "{apply_runs}"
    );
    assert!(
        !apply_runs.contains("apply -f") && !apply_runs.contains("--auto-approve"),
        "the apply job must not re-plan: {apply_runs}"
    );
}

#[test]
fn arcplan_is_built_in_release_with_a_cache_not_installed_from_a_placeholder() {
    let w = workflow();
    let text = serde_json::to_string(&w).unwrap();
    assert!(!text.contains("example.invalid"), "placeholder URL left");
    let build = &w["jobs"]["build"];
    assert!(
        runs(build).contains("cargo build --release --locked"),
        "{}",
        runs(build)
    );
    assert!(
        steps(build).into_iter().any(|s| s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("actions/cache"))),
        "the build is cached"
    );
}

#[test]
fn the_oidc_token_is_refreshed_while_arcplan_runs_and_failures_are_commented() {
    let w = workflow();
    for job in ["plan", "apply"] {
        let r = runs(&w["jobs"][job]);
        assert!(r.contains("ACTIONS_ID_TOKEN_REQUEST_URL"), "{job}: {r}");
        assert!(
            r.contains("while sleep"),
            "{job}: the token file is rewritten in the background: {r}"
        );
        assert!(r.contains("AZURE_FEDERATED_TOKEN_FILE="), "{job}: {r}");
    }
    let comment = steps(&w["jobs"]["plan"])
        .into_iter()
        .find(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("gh pr comment"))
        })
        .expect("a comment step");
    let cond = comment["if"].as_str().unwrap_or("");
    assert!(
        cond.contains("always()"),
        "a failing plan is commented too: {cond}"
    );
    // The comment step comes before the step that fails the job.
    let plan_steps = steps(&w["jobs"]["plan"]);
    let pos = |pred: &dyn Fn(&Value) -> bool| plan_steps.iter().position(|s| pred(s)).unwrap();
    let comment_at = pos(&|s| {
        s["run"]
            .as_str()
            .is_some_and(|r| r.contains("gh pr comment"))
    });
    let fail_at = pos(&|s| s["run"].as_str() == Some("exit 1"));
    assert!(comment_at < fail_at);
}

fn sharded() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/ci/github-actions-sharded.yml"
    );
    let text = std::fs::read_to_string(path).expect("the sharded workflow example");
    serde_saphyr::from_str(&text).expect("the workflow is YAML")
}

#[test]
fn the_sharded_workflow_plans_merges_and_applies_every_shard() {
    let w = sharded();
    let shards: u64 = w["env"]["SHARDS"].as_str().unwrap().parse().unwrap();
    let jobs = &w["jobs"];
    let every: Vec<u64> = (1..=shards).collect();
    for job in ["plan", "apply"] {
        let matrix: Vec<u64> = jobs[job]["strategy"]["matrix"]["shard"]
            .as_array()
            .unwrap_or_else(|| panic!("{job} is a matrix over shards"))
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(
            matrix, every,
            "{job}'s matrix covers shards 1..{shards}, each once"
        );
        assert_eq!(
            jobs[job]["strategy"]["fail-fast"], false,
            "{job}: one shard's failure does not cancel the others"
        );
    }
    let plan = runs(&jobs["plan"]);
    assert!(
        plan.contains(r#"--shard "${{ matrix.shard }}/$SHARDS""#),
        "{plan}"
    );
    assert!(
        plan.contains(r#"--out "shard-${{ matrix.shard }}.plan""#),
        "{plan}"
    );
    let merge = &jobs["merge"];
    assert_eq!(merge["needs"], "plan");
    assert!(
        runs(merge).contains("arcplan show --merge shard-*.plan --format markdown"),
        "{}",
        runs(merge)
    );
    let downloads_all = steps(merge)
        .into_iter()
        .any(|s| s["with"]["pattern"] == "arc-plan-*" && s["with"]["merge-multiple"] == true);
    assert!(downloads_all, "the merge job downloads every shard's plan");
    assert!(
        runs(merge).contains("gh pr comment"),
        "one comment, from the merge job"
    );
    let apply = &jobs["apply"];
    assert_eq!(apply["needs"], "merge");
    assert!(
        apply["environment"].is_string(),
        "apply waits for reviewers"
    );
    assert!(
        runs(apply).contains(r#"arcplan apply "shard-${{ matrix.shard }}.plan""#),
        "each shard applies its own saved plan: {}",
        runs(apply)
    );
    let gets_own_plan = steps(apply)
        .into_iter()
        .any(|s| s["with"]["name"] == "arc-plan-${{ matrix.shard }}");
    assert!(gets_own_plan, "the apply job downloads its shard's plan");
}
