//! Which subscription each resource is in, and what validation says about it.

use arcplan_config::load_str;
use arcplan_engine::diag::Diagnostics;

const S1: &str = "3000e2af-0000-46d9-0000-4bdb12000000";
const S2: &str = "5b1c0de0-0000-4000-8000-00000000c0de";

fn doc(groups: &str, clusters: &str) -> String {
    format!(
        "apiVersion: arcplan/v1
stack: s
azure:
  subscription: {S1}
resourceProviders: [Microsoft.Kubernetes]
resourceGroups:
{groups}clusters:
{clusters}"
    )
}

fn errors(text: &str) -> Diagnostics {
    load_str(text, "f.yaml").expect_err("the document should be rejected")
}

#[test]
fn a_cluster_is_in_its_groups_subscription_unless_it_names_one() {
    let text = doc(
        &format!(
            "  - {{ name: a, location: eastus }}\n  - {{ name: b, location: eastus, subscription: {S2} }}\n  - {{ name: both, location: eastus }}\n  - {{ name: both, location: eastus, subscription: {S2} }}\n"
        ),
        &format!(
            "  - {{ name: c1, context: c1, resourceGroup: a }}\n  - {{ name: c2, context: c2, resourceGroup: B }}\n  - {{ name: c3, context: c3, resourceGroup: both, subscription: {S2} }}\n  - {{ name: c4, context: c4, resourceGroup: both, subscription: {S1} }}\n"
        ),
    );
    let l = load_str(&text, "f.yaml").unwrap();
    let cfg = &l.config;
    let subs: Vec<&str> = cfg
        .clusters
        .iter()
        .map(|c| cfg.cluster_subscription(c))
        .collect();
    assert_eq!(subs, [S1, S2, S2, S1]);
    assert_eq!(cfg.subscriptions(), [S1, S2]);
    // The S2 `both` is the group of c3, the S1 one c4's.
    let g3 = cfg.group_of(Some(S2), "both").unwrap();
    assert_eq!(g3.subscription.as_deref(), Some(S2));
    assert!(
        cfg.group_of(Some(S1), "both")
            .unwrap()
            .subscription
            .is_none()
    );
    assert!(
        cfg.group_of(None, "both").is_none(),
        "ambiguous without a subscription"
    );
}

#[test]
fn group_references_across_subscriptions_are_checked() {
    let groups = format!(
        "  - {{ name: both, location: eastus }}\n  - {{ name: both, location: eastus, subscription: {S2} }}\n  - {{ name: only2, location: eastus, subscription: {S2} }}\n"
    );
    let d = errors(&doc(
        &groups,
        &format!(
            "  - {{ name: c1, context: c1, resourceGroup: both }}\n  - {{ name: c2, context: c2, resourceGroup: only2, subscription: {S1} }}\n  - {{ name: c3, context: c3, resourceGroup: both, subscription: not-a-guid }}\n"
        ),
    ));
    let ambiguous = d
        .iter()
        .find(|x| x.code == "ambiguous-resource-group")
        .unwrap_or_else(|| panic!("{d}"));
    assert!(
        ambiguous.message.contains("cluster `c1`"),
        "{}",
        ambiguous.message
    );
    assert!(ambiguous.message.contains(S2), "{}", ambiguous.message);
    assert_eq!(ambiguous.location.as_ref().unwrap().line, 11);
    assert!(
        ambiguous
            .hint
            .as_deref()
            .unwrap()
            .contains("subscription: ")
    );
    let undeclared = d
        .iter()
        .find(|x| x.code == "undeclared-resource-group")
        .unwrap_or_else(|| panic!("{d}"));
    assert!(
        undeclared
            .message
            .contains(&format!("`only2` in subscription {S1}")),
        "{}",
        undeclared.message
    );
    assert!(
        undeclared.hint.as_deref().unwrap().contains(S2),
        "{undeclared:?}"
    );
    let guid = d
        .iter()
        .find(|x| x.code == "invalid-guid")
        .unwrap_or_else(|| panic!("{d}"));
    assert!(
        guid.message.contains("clusters[2].subscription"),
        "{}",
        guid.message
    );

    // One name twice in one subscription is a duplicate; in two it is not.
    let dup = errors(&doc(
        "  - { name: x, location: eastus }\n  - { name: X, location: eastus }\n",
        "  - { name: c1, context: c1, resourceGroup: x }\n",
    ));
    assert!(dup.iter().any(|x| x.code == "duplicate-name"), "{dup}");
    assert!(
        load_str(
            &doc(
                &groups,
                "  - { name: c1, context: c1, resourceGroup: only2 }\n"
            ),
            "f.yaml"
        )
        .is_ok()
    );
}
