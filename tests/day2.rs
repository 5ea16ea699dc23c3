//! Day 2 end to end, on the sandbox with the real binary: `examples/day2.yaml` (the quickstart
//! with workload identity and pinned agents, plus Azure Monitor and Azure Policy as cluster
//! extensions, a Flux configuration with two kustomizations, a custom location, the monitor's
//! workspace key and the Flux HTTPS key protected settings from the environment) planned,
//! applied, re-planned empty; a protected setting changed is planned as an update shown by
//! digest, never by value; an extension deleted out of band is planned again; a pinned
//! extension version bumped is one in-place update; an agent version bump is an in-place
//! update of the connected cluster (desiredAgentVersion) and of the agents; destroy removes
//! the extensions before the cluster. The secret scan covers the protected values.

mod common;

use common::*;

const DAY2: &str = "examples/day2.yaml";
const KEY_VAR: &str = "ARCPLAN_MONITOR_WORKSPACE_KEY";
const FIRST_KEY: &str = "wk-1a2b3c4d5e6f-first-workspace-key";
const SECOND_KEY: &str = "wk-9z8y7x6w5v4u-second-workspace-key";

const FLUX_KEY_VAR: &str = "ARCPLAN_FLUX_HTTPS_KEY";
const FLUX_KEY: &str = "ghp-flux-https-key-0f1e2d3c4b5a";

/// Runs arcplan with the workspace key (and the Flux repository's key) in the environment.
fn run(w: &World, args: &[&str], key: &str) -> (i32, String, String) {
    let o = w
        .spawn(args, &[(KEY_VAR, key), (FLUX_KEY_VAR, FLUX_KEY)])
        .wait_with_output()
        .unwrap();
    w.record(&format!("arcplan {} ({KEY_VAR} set)", args.join(" ")), &o)
}

fn ids(w: &World) -> (String, &'static str, &'static str) {
    (
        w.sandbox.subscription_ids()[0].clone(),
        "myAzureResourceGroup",
        "mynewcluster",
    )
}

fn extensions(w: &World) -> Vec<serde_json::Value> {
    let (s, rg, c) = ids(w);
    w.sandbox.arm().extensions(&s, rg, c)
}

fn state_of(w: &World, name: &str) -> Option<serde_json::Value> {
    extensions(w).into_iter().find(|e| e["name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn day2_extensions_lifecycle() {
    let w = World::start().await;
    let plan = ["plan", "-f", DAY2, "--detailed-exitcode"];
    let apply = ["apply", "-f", DAY2, "--auto-approve"];

    // First plan: the extensions come after the cluster, in the same plan.
    let (code, out, err) = tokio::task::block_in_place(|| run(&w, &plan, FIRST_KEY));
    assert_eq!(code, 2, "{out}{err}");
    for a in [
        "arc.extension.mynewcluster/azuremonitor-containers will be created",
        "arc.extension.mynewcluster/azurepolicy will be created",
        "arc.customLocation.mynewcluster-services will be created",
        "arc.extension.mynewcluster/flux will be created",
        "arc.fluxConfiguration.mynewcluster/cluster-config will be created",
    ] {
        assert!(out.contains(a), "{a}:\n{out}");
    }
    assert!(out.contains("protectedSettingsDigest"), "{out}");

    let (code, out, err) = tokio::task::block_in_place(|| run(&w, &apply, FIRST_KEY));
    assert_eq!(code, 0, "{out}{err}");
    let monitor = state_of(&w, "azuremonitor-containers").expect("monitor installed");
    assert_eq!(monitor["properties"]["provisioningState"], "Succeeded");
    assert_eq!(
        monitor["properties"]["configurationSettings"]["arcplan.stack"], "day2",
        "ownership is recorded on the extension"
    );
    let cluster = w
        .sandbox
        .arm()
        .connected_cluster(&ids(&w).0, "myAzureResourceGroup", "mynewcluster")
        .unwrap();
    let p = &cluster["properties"];
    assert_eq!(p["securityProfile"]["workloadIdentity"]["enabled"], true);
    assert_eq!(p["oidcIssuerProfile"]["enabled"], true);
    assert!(
        p["oidcIssuerProfile"]["issuerUrl"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    assert_eq!(p["arcAgentProfile"]["agentAutoUpgrade"], "Disabled");
    assert_eq!(p["arcAgentProfile"]["desiredAgentVersion"], "1.21.10");
    // The cluster's extension manager installed them: namespaces and Deployments in the cluster.
    let kube = w.sandbox.kube();
    for (ns, name) in [
        ("azuremonitor-containers", "azuremonitor-containers"),
        ("azurepolicy", "azurepolicy"),
    ] {
        let d = kube
            .get("apps/v1", "Deployment", Some(ns), name)
            .unwrap_or_else(|| panic!("Deployment {ns}/{name} in the cluster"));
        assert_eq!(
            d["metadata"]["labels"]["clusterconfig.azure.com/extension-name"],
            name
        );
    }
    // The agents' features: the cluster-connect agent, and the binding that lets the Custom
    // Locations service in (the custom location was created through it).
    assert!(
        kube.get(
            "apps/v1",
            "Deployment",
            Some("azure-arc"),
            "clusterconnect-agent"
        )
        .is_some()
    );
    let binding = kube
        .get(
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            None,
            "azure-arc-custom-locations",
        )
        .expect("the custom-locations feature's binding");
    assert_eq!(
        binding["subjects"][0]["name"],
        arcplan_sandbox::CUSTOM_LOCATIONS_OID
    );
    // Flux: Compliant, each kustomization reported.
    let flux =
        w.sandbox
            .arm()
            .flux_configurations(&ids(&w).0, "myAzureResourceGroup", "mynewcluster");
    assert_eq!(flux.len(), 1);
    assert_eq!(flux[0]["properties"]["complianceState"], "Compliant");
    let statuses = flux[0]["properties"]["statuses"].as_array().unwrap();
    for k in ["cluster-config-infra", "cluster-config-apps"] {
        assert!(
            statuses
                .iter()
                .any(|st| st["name"] == k && st["complianceState"] == "Compliant"),
            "{k}: {statuses:?}"
        );
    }
    let location = w
        .sandbox
        .arm()
        .custom_location(&ids(&w).0, "myAzureResourceGroup", "mynewcluster-services")
        .expect("custom location created");
    assert_eq!(location["properties"]["provisioningState"], "Succeeded");
    assert_eq!(location["properties"]["namespace"], "arc-services");
    assert!(
        location["properties"]["clusterExtensionIds"][0]
            .as_str()
            .unwrap()
            .ends_with("/extensions/azuremonitor-containers")
    );
    let policy = state_of(&w, "azurepolicy").expect("policy installed");
    assert_eq!(policy["properties"]["version"], "1.10.0");
    assert_eq!(policy["properties"]["autoUpgradeMinorVersion"], false);
    let (s, rg, c) = ids(&w);
    let sent = w
        .sandbox
        .arm()
        .extension_protected_settings(&s, rg, c, "azuremonitor-containers")
        .unwrap();
    assert_eq!(
        sent["omsagent.secret.key"], FIRST_KEY,
        "the service got the key"
    );
    assert!(
        !monitor.to_string().contains(FIRST_KEY),
        "ARM never returns it"
    );

    // Converged.
    let (code, out, err) = tokio::task::block_in_place(|| run(&w, &plan, FIRST_KEY));
    assert_eq!(code, 0, "re-plan is empty:\n{out}{err}");

    // A changed protected setting: an update, shown by its digest.
    let (code, out, err) = tokio::task::block_in_place(|| run(&w, &plan, SECOND_KEY));
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("arc.extension.mynewcluster/azuremonitor-containers will be updated in place"),
        "{out}"
    );
    assert!(out.contains("protectedSettingsDigest"), "{out}");
    assert!(
        out.contains("1 to change"),
        "only the monitor changes:\n{out}"
    );
    let (code, out, err) = tokio::task::block_in_place(|| run(&w, &apply, SECOND_KEY));
    assert_eq!(code, 0, "{out}{err}");
    let sent = w
        .sandbox
        .arm()
        .extension_protected_settings(&s, rg, c, "azuremonitor-containers")
        .unwrap();
    assert_eq!(sent["omsagent.secret.key"], SECOND_KEY);
    let (code, out, err) = tokio::task::block_in_place(|| run(&w, &plan, SECOND_KEY));
    assert_eq!(code, 0, "{out}{err}");

    // Deleted out of band: planned again, and only that.
    assert!(w.sandbox.arm().remove_extension(&s, rg, c, "azurepolicy"));
    let (code, out, err) = tokio::task::block_in_place(|| run(&w, &plan, SECOND_KEY));
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("arc.extension.mynewcluster/azurepolicy will be created"),
        "{out}"
    );
    assert!(out.contains("1 to add, 0 to change, 0 to destroy"), "{out}");
    let (code, out, err) = tokio::task::block_in_place(|| run(&w, &apply, SECOND_KEY));
    assert_eq!(code, 0, "{out}{err}");

    // A pinned version bumped: one in-place update.
    let bumped = w.dir.join("day2-bumped.yaml");
    let text = std::fs::read_to_string(root().join(DAY2))
        .unwrap()
        .replace("version: 1.10.0", "version: 1.11.0");
    std::fs::write(&bumped, text).unwrap();
    let bumped = bumped.display().to_string();
    let (code, out, err) = tokio::task::block_in_place(|| {
        run(
            &w,
            &["plan", "-f", &bumped, "--detailed-exitcode"],
            SECOND_KEY,
        )
    });
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("arc.extension.mynewcluster/azurepolicy will be updated in place"),
        "{out}"
    );
    assert!(out.contains("0 to add, 1 to change, 0 to destroy"), "{out}");
    let (code, out, err) = tokio::task::block_in_place(|| {
        run(&w, &["apply", "-f", &bumped, "--auto-approve"], SECOND_KEY)
    });
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        state_of(&w, "azurepolicy").unwrap()["properties"]["currentVersion"],
        "1.11.0"
    );

    // An agent upgrade: one in-place update (the connected cluster's desiredAgentVersion; the
    // agents roll themselves to it and arc.connectivity waits until they report it), nothing
    // replaced, no second change of the agents that would roll them back.
    let upgraded = w.dir.join("day2-upgraded.yaml");
    let text = std::fs::read_to_string(w.dir.join("day2-bumped.yaml"))
        .unwrap()
        .replace("version: 1.21.10", "version: 1.22.0");
    std::fs::write(&upgraded, text).unwrap();
    let upgraded = upgraded.display().to_string();
    let (code, out, err) = tokio::task::block_in_place(|| {
        run(
            &w,
            &["plan", "-f", &upgraded, "--detailed-exitcode"],
            SECOND_KEY,
        )
    });
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("arc.connectedCluster.mynewcluster will be updated in place"),
        "{out}"
    );
    assert!(
        out.contains("agents upgraded to 1.22.0"),
        "the reason says it:\n{out}"
    );
    assert!(out.contains("0 to add, 1 to change, 0 to destroy"), "{out}");
    assert!(!out.contains("k8s.arcAgents.mynewcluster will be"), "{out}");
    let (code, out, err) = tokio::task::block_in_place(|| {
        run(
            &w,
            &["apply", "-f", &upgraded, "--auto-approve"],
            SECOND_KEY,
        )
    });
    assert_eq!(code, 0, "{out}{err}");
    let cluster = w
        .sandbox
        .arm()
        .connected_cluster(&ids(&w).0, "myAzureResourceGroup", "mynewcluster")
        .unwrap();
    assert_eq!(
        cluster["properties"]["arcAgentProfile"]["desiredAgentVersion"],
        "1.22.0"
    );
    // The apply waited for the agents to roll and report the new version.
    assert_eq!(cluster["properties"]["agentVersion"], "1.22.0", "{out}");
    let agent = w
        .sandbox
        .kube()
        .get("apps/v1", "Deployment", Some("azure-arc"), "config-agent")
        .unwrap();
    assert_eq!(
        agent["spec"]["template"]["spec"]["containers"][0]["image"],
        "mcr.microsoft.com/azurearck8s/config-agent:1.22.0"
    );
    let (code, out, err) = tokio::task::block_in_place(|| {
        run(
            &w,
            &["plan", "-f", &upgraded, "--detailed-exitcode"],
            SECOND_KEY,
        )
    });
    assert_eq!(code, 0, "converged after the upgrade:\n{out}{err}");

    // Removed from the file: pruned, because it carries this stack's ownership.
    let pruned = w.dir.join("day2-pruned.yaml");
    let text = std::fs::read_to_string(&upgraded).unwrap();
    let (from, to) = (
        text.find("      - name: azurepolicy").unwrap(),
        text.find("\ncustomLocations:").unwrap() + 1,
    );
    std::fs::write(&pruned, format!("{}{}", &text[..from], &text[to..])).unwrap();
    let pruned = pruned.display().to_string();
    let (code, out, err) = tokio::task::block_in_place(|| {
        run(
            &w,
            &["plan", "-f", &pruned, "--detailed-exitcode"],
            SECOND_KEY,
        )
    });
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("arc.extension.mynewcluster/azurepolicy will be destroyed"),
        "{out}"
    );
    assert!(out.contains("0 to add, 0 to change, 1 to destroy"), "{out}");
    let (code, out, err) = tokio::task::block_in_place(|| {
        run(&w, &["apply", "-f", &pruned, "--auto-approve"], SECOND_KEY)
    });
    assert_eq!(code, 0, "{out}{err}");
    assert!(state_of(&w, "azurepolicy").is_none(), "pruned");
    let gone = std::time::Instant::now();
    while w
        .sandbox
        .kube()
        .get("apps/v1", "Deployment", Some("azurepolicy"), "azurepolicy")
        .is_some()
    {
        assert!(
            gone.elapsed() < std::time::Duration::from_secs(30),
            "the manager removes the pruned extension's workloads"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        state_of(&w, "azuremonitor-containers").is_some(),
        "the other stays"
    );

    // Destroy: extensions first, then the cluster.
    let (code, out, err) = tokio::task::block_in_place(|| {
        run(
            &w,
            &["destroy", "-f", &pruned, "--auto-approve"],
            SECOND_KEY,
        )
    });
    assert_eq!(code, 0, "{out}{err}");
    let text = format!("{out}{err}");
    let location_gone = text
        .find("arc.customLocation.mynewcluster-services: Destruction complete")
        .unwrap_or_else(|| panic!("custom location destroyed:\n{text}"));
    let ext_gone = text
        .find("arc.extension.mynewcluster/azuremonitor-containers: Destruction complete")
        .unwrap_or_else(|| panic!("extension destroyed:\n{text}"));
    let cluster_gone = text
        .find("arc.connectedCluster.mynewcluster: Destruction complete")
        .unwrap_or_else(|| panic!("cluster destroyed:\n{text}"));
    assert!(location_gone < ext_gone, "reverse order:\n{text}");
    assert!(ext_gone < cluster_gone, "reverse order:\n{text}");
    assert!(w.sandbox.arm().connected_clusters().is_empty());

    // Neither key, in anything arcplan printed.
    let transcript = w.transcript.borrow().clone();
    for key in [FIRST_KEY, SECOND_KEY, FLUX_KEY] {
        assert!(!transcript.contains(key), "a protected setting leaked");
    }
    w.assert_no_secrets(&[]);
}
