use super::diff::{abbreviate, key_text};
use super::json::{flags, strip};
use super::*;
use crate::views::fixtures::{self, SECRET};
use arcplan_engine::plan::Change;
use arcplan_providers::kinds::cluster_of;
use serde_json::json;

#[test]
fn golden_human_markdown_json() {
    for (name, plan) in fixtures::all() {
        fixtures::snapshot(
            &format!("plan_{name}.txt"),
            &human(&plan, false, &Default::default()),
        );
        fixtures::snapshot(
            &format!("plan_{name}.md"),
            &markdown(&plan, &MarkdownOptions::default()),
        );
        fixtures::snapshot(
            &format!("plan_{name}.json"),
            &(serde_json::to_string_pretty(&json(&plan)).unwrap() + "\n"),
        );
    }
}

#[test]
fn no_rendering_shows_a_sensitive_value() {
    for (name, plan) in fixtures::all() {
        let outputs = [
            human(&plan, false, &Default::default()),
            human(&plan, true, &Default::default()),
            markdown(&plan, &MarkdownOptions::default()),
            json(&plan).to_string(),
        ];
        for out in outputs {
            assert!(
                !out.contains("FAKE-SECRET"),
                "{name} leaks the secret:\n{out}"
            );
        }
    }
    // The fixtures really do carry the secret, unredacted, at sensitive paths.
    let p = fixtures::replace();
    assert!(serde_json::to_string(&p).unwrap().contains(SECRET));
}

#[test]
fn without_colour_there_is_no_escape_and_with_colour_there_is() {
    for (name, plan) in fixtures::all() {
        assert!(
            !human(&plan, false, &Default::default()).contains('\x1b'),
            "{name}"
        );
        assert!(
            !markdown(&plan, &MarkdownOptions::default()).contains('\x1b'),
            "{name}"
        );
    }
    let coloured = human(&fixtures::replace(), true, &Default::default());
    assert!(coloured.contains(&format!("{CREATE}+{CREATE:#}")));
    assert!(coloured.contains(&format!("{DELETE}-{DELETE:#}")));
    assert!(coloured.contains(&format!("{UPDATE}~{UPDATE:#}")));
}

#[test]
fn summary_line_and_header() {
    let p = fixtures::onboarding();
    let text = human(&p, false, &Default::default());
    assert!(text.starts_with("arcplan will perform the following actions:\n"));
    assert!(text.ends_with("Plan: 5 to add, 0 to change, 0 to destroy.\n"));
    let none = human(&fixtures::no_changes(), false, &Default::default());
    assert!(none.starts_with("No changes. Live state matches the configuration.\n"));
    let failed = human(&fixtures::failed_check(), false, &Default::default());
    assert!(failed.trim_end().ends_with("then run plan again."));
    assert!(failed.contains("      fix: az role assignment create"));
}

#[test]
fn long_values_are_abbreviated_and_unknowns_marked() {
    assert_eq!(
        abbreviate(&fixtures::public_key('A')),
        "MIICCgKCAgEA…(512 chars)…AAE="
    );
    let text = human(&fixtures::onboarding(), false, &Default::default());
    assert!(text.contains("+ agentPublicKeyCertificate = (known after apply)"));
    assert!(!text.contains("$ref"));
    let text = human(&fixtures::replace(), false, &Default::default());
    assert!(text.contains("# forces replacement"));
    assert!(text.contains(
        "# (this also affects: k8s.arcAgents.mynewcluster, arc.connectivity.mynewcluster)"
    ));
}

#[test]
fn edge_values() {
    use arcplan_engine::address::Address;
    let mut c = Change::new(
        Address::new(arcplan_providers::kinds::CONNECTED_CLUSTER, "c"),
        Action::Update,
    );
    let (a, mut b) = (fixtures::public_key('A'), fixtures::public_key('A'));
    b.replace_range(300..301, "Z");
    c.before = Some(
        json!({
            "key": a,
            "id": format!("/subscriptions/{}", "0".repeat(80)),
            "list": [{"name": "x", "token": SECRET}],
            "gone": {"a": 1},
        })
        .into(),
    );
    c.after = Some(json!({
        "key": b,
        "id": format!("/subscriptions/{}", "1".repeat(80)),
        "list": [{"name": "y", "token": SECRET}],
        "nested": {"deep": {"$ref": "k8s.onboardingKey.c#publicKey"}},
        "gone": null,
    }));
    c.sensitive_paths = vec!["/list/0/token".into()];
    c.after_unknown = vec!["/nested/deep".into()];
    let mut plan = fixtures::no_changes();
    plan.changes = vec![c];
    let text = human(&plan, false, &Default::default());
    assert!(text.contains("(differs from character 301)"), "{text}");
    assert!(
        text.contains(&format!("/subscriptions/{}", "1".repeat(80))),
        "ids stay whole"
    );
    assert!(
        text.contains(r#"[{"name":"x","token":"(sensitive value)"}]"#),
        "{text}"
    );
    assert!(text.contains("+ deep = (known after apply)"), "{text}");
    assert!(text.contains("        } -> null"), "{text}");
    // An attribute only the live state has is read-only, not a removal.
    let mut c = plan.changes[0].clone();
    let mut before = c.before_value().unwrap();
    before["ready"] = false.into();
    before["ownership"] = json!({"AZURE_RESOURCE_NAME": "c"});
    c.before = Some(before.into());
    let mut ro = plan.clone();
    ro.changes = vec![c];
    let text = human(&ro, false, &Default::default());
    assert!(!text.contains("ready = false -> null"), "{text}");
    assert!(!text.contains("- ownership"), "{text}");
    assert!(
        text.contains("# (read-only, not changed by this plan: ownership, ready)"),
        "{text}"
    );
    for out in [
        text,
        markdown(&plan, &MarkdownOptions::default()),
        json(&plan).to_string(),
    ] {
        assert!(!out.contains(SECRET) && !out.contains("$ref"), "{out}");
    }
}

#[test]
fn json_document_shape() {
    let v = json(&fixtures::replace());
    assert_eq!(v["format_version"], "1.0");
    assert_eq!(v["applyable"], true);
    let key = &v["resource_changes"][0];
    assert_eq!(key["change"]["actions"], json!(["delete", "create"]));
    assert_eq!(key["action_reason"], "requested");
    assert!(key["change"]["before"].get("privateKey").is_none());
    assert!(key["change"]["before"].get("protected").is_none());
    assert_eq!(
        key["change"]["before_sensitive"],
        json!({"privateKey": true, "protected": true})
    );
    assert_eq!(key["change"]["after_unknown"], json!({"publicKey": true}));
    assert_eq!(key["change"]["replace_paths"], json!([["keyBits"]]));
    let failed = json(&fixtures::failed_check());
    assert_eq!(failed["errored"], true);
    assert_eq!(failed["applyable"], false);
    assert_eq!(json(&fixtures::no_changes())["applyable"], false);
}

#[test]
fn pointer_helpers() {
    assert!(at_or_under("/a/b", "/a"));
    assert!(!at_or_under("/ab", "/a"));
    assert_eq!(
        flags(&["/a/b".into(), "/c".into()]),
        json!({"a": {"b": true}, "c": true})
    );
    assert_eq!(flags(&["/a".into(), "/a/b".into()]), json!({"a": true}));
    let mut v = json!({"a": {"b~/c": 1, "d": [1, 2]}});
    strip(&mut v, &["/a/b~0~1c".into(), "/a/d/1".into()]);
    assert_eq!(v, json!({"a": {"d": [1, null]}}));
    assert_eq!(key_text("arcplan-stack"), "\"arcplan-stack\"");
    assert_eq!(key_text("env"), "env");
}

#[test]
fn markdown_stays_within_its_budget_without_cutting_a_block() {
    use arcplan_engine::address::Address;
    use arcplan_engine::plan::Action;
    // Forty copies of the onboarding's cluster resources, one cluster each.
    let base = fixtures::onboarding();
    let mut plan = base.clone();
    plan.changes.clear();
    for i in 0..40 {
        for c in base
            .changes
            .iter()
            .filter(|c| cluster_of(&c.address).is_some())
        {
            let mut c = c.clone();
            c.address = Address::new(c.address.rtype.clone(), format!("c{i:02}"));
            plan.changes.push(c);
        }
    }
    let mut gone = Change::new(
        Address::new(arcplan_providers::kinds::RESOURCE_GROUP, "rg-old"),
        Action::Delete,
    );
    gone.before = Some(json!({"name": "rg-old"}).into());
    plan.changes.push(gone);
    let whole = markdown(
        &plan,
        &MarkdownOptions {
            max_bytes: usize::MAX,
            plan_file: None,
            ..Default::default()
        },
    );
    assert!(!whole.contains("[!NOTE]"), "everything fits: no note");
    let opts = MarkdownOptions {
        max_bytes: 8_000,
        plan_file: Some("plan.out".into()),
        ..Default::default()
    };
    let md = markdown(&plan, &opts);
    assert!(md.len() <= 8_000, "{} bytes", md.len());
    assert_eq!(
        md.matches("<details>").count(),
        md.matches("</details>").count()
    );
    assert_eq!(md.matches("```").count() % 2, 0);
    assert!(md.contains("`arcplan show plan.out`"), "{md}");
    let kept = md.matches("<details>").count();
    assert!(kept > 0 && kept < 121, "{kept}");
    assert!(
        md.contains(&format!("the details of {} of 121 resources", 121 - kept)),
        "{md}"
    );
    // The riskiest change comes first, so it is the last to be left out.
    let first = md.find("<details>").unwrap();
    assert!(
        md[first..].starts_with("<details><summary>🔴 <code>azure.resourceGroup.rg-old</code>")
    );
    // A tiny budget keeps the table rows that fit and says how many are missing.
    let tiny = markdown(
        &plan,
        &MarkdownOptions {
            max_bytes: 1_500,
            plan_file: None,
            ..Default::default()
        },
    );
    assert!(tiny.len() <= 1_500, "{}", tiny.len());
    assert!(tiny.contains("more rows (see the full plan)"), "{tiny}");
    assert!(tiny.contains("`arcplan plan --out PLANFILE`"), "{tiny}");
    // The note's command carries the file and target of the run that printed it.
    let run = crate::cli::Invocation::new(
        std::path::Path::new("fleet.yaml"),
        &crate::cli::TargetArgs {
            sandbox_dir: Some("sb 1".into()),
            sandbox_azure_only: true,
            ..Default::default()
        },
    );
    let tiny = markdown(
        &plan,
        &MarkdownOptions {
            max_bytes: 1_500,
            plan_file: None,
            run,
        },
    );
    assert!(
        tiny.contains(
            "save it with `arcplan plan -f fleet.yaml --sandbox-dir 'sb 1' --sandbox-azure-only --out PLANFILE`"
        ),
        "{tiny}"
    );
}
