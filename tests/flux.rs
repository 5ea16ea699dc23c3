//! Flux GitOps end to end, on the sandbox with the real binary: `examples/flux.yaml` (the
//! quickstart plus one Flux configuration with two kustomizations, `apps` after `infra`, its
//! HTTPS key a protected setting from the environment) planned with the implicit
//! `microsoft.flux` extension, applied until Flux reports it Compliant, re-planned empty; a new
//! namespace replaces it; a
//! repository the Flux controllers cannot clone fails the apply with their message (and later
//! plans warn of it); a configuration gone from the file is pruned with its implicit extension;
//! destroy
//! removes the configuration, then the extension, then the cluster. The secret scan covers the
//! protected value.

mod common;

use base64::Engine;
use common::*;

const FLUX: &str = "examples/flux.yaml";
const KEY_VAR: &str = "ARCPLAN_FLUX_HTTPS_KEY";
const KEY: &str = "ghp-flux-https-key-1a2b3c4d5e6f7a8b9c0d";
const URL: &str = "https://github.com/Azure/gitops-flux2-kustomize-helm-mt";
const CONFIG: &str = "arc.fluxConfiguration.mynewcluster/cluster-config";
const EXTENSION: &str = "arc.extension.mynewcluster/flux";

/// Runs arcplan with the HTTPS key in the environment.
fn run(w: &World, args: &[&str]) -> (i32, String, String) {
    let o = w.spawn(args, &[(KEY_VAR, KEY)]).wait_with_output().unwrap();
    w.record(&format!("arcplan {} ({KEY_VAR} set)", args.join(" ")), &o)
}

fn ids(w: &World) -> (String, &'static str, &'static str) {
    (
        w.sandbox.subscription_ids()[0].clone(),
        "myAzureResourceGroup",
        "mynewcluster",
    )
}

fn configuration(w: &World) -> Option<serde_json::Value> {
    let (s, rg, c) = ids(w);
    w.sandbox
        .arm()
        .flux_configurations(&s, rg, c)
        .into_iter()
        .find(|f| f["name"] == "cluster-config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_configuration_lifecycle() {
    let w = World::start().await;
    let plan = ["plan", "-f", FLUX, "--detailed-exitcode"];

    // First plan: the implicit flux extension and the configuration, after the cluster.
    let (code, out, err) = tokio::task::block_in_place(|| run(&w, &plan));
    assert_eq!(code, 2, "{out}{err}");
    for a in [
        format!("{EXTENSION} will be created"),
        format!("{CONFIG} will be created"),
    ] {
        assert!(out.contains(&a), "{a}:\n{out}");
    }
    assert!(out.contains("protectedSettingsDigest"), "{out}");
    assert!(
        out.contains("added implicitly: the Flux configurations of cluster mynewcluster run on a microsoft.flux extension"),
        "the implicit extension says why:\n{out}"
    );

    // Apply: Compliant, each kustomization reported (as progress events).
    let (code, out, err) =
        tokio::task::block_in_place(|| run(&w, &["apply", "-f", FLUX, "--auto-approve", "--json"]));
    assert_eq!(code, 0, "{out}{err}");
    let text = format!("{out}{err}");
    for k in ["cluster-config-infra", "cluster-config-apps"] {
        assert!(
            text.contains(&format!("kustomization {k}: Compliant")),
            "{k} reported:\n{text}"
        );
    }
    let f = configuration(&w).expect("configuration created");
    let p = &f["properties"];
    assert_eq!(p["complianceState"], "Compliant");
    assert_eq!(p["namespace"], "cluster-config");
    assert_eq!(p["gitRepository"]["syncIntervalInSeconds"], 300);
    assert_eq!(p["kustomizations"]["apps"]["dependsOn"][0], "infra");
    assert_eq!(p["kustomizations"]["apps"]["retryIntervalInSeconds"], 60);
    let (s, rg, c) = ids(&w);
    let ext = w
        .sandbox
        .arm()
        .extensions(&s, rg, c)
        .into_iter()
        .find(|e| e["name"] == "flux")
        .expect("the implicit flux extension");
    assert_eq!(ext["properties"]["extensionType"], "microsoft.flux");
    assert_eq!(
        ext["properties"]["configurationSettings"]["arcplan.stack"],
        "flux"
    );
    let sent = w
        .sandbox
        .arm()
        .flux_protected_settings(&s, rg, c, "cluster-config")
        .unwrap();
    assert_eq!(
        sent["httpsKey"],
        base64::engine::general_purpose::STANDARD.encode(KEY),
        "the service got the key, base64-encoded"
    );
    assert!(!f.to_string().contains(KEY), "ARM never returns it");

    // Converged.
    let (code, out, err) = tokio::task::block_in_place(|| run(&w, &plan));
    assert_eq!(code, 0, "re-plan is empty:\n{out}{err}");

    // A new namespace cannot be patched: the configuration is replaced.
    let moved = w.dir.join("flux-moved.yaml");
    let text = std::fs::read_to_string(root().join(FLUX))
        .unwrap()
        .replace("namespace: cluster-config", "namespace: gitops");
    std::fs::write(&moved, text).unwrap();
    let moved = moved.display().to_string();
    let (code, out, err) =
        tokio::task::block_in_place(|| run(&w, &["plan", "-f", &moved, "--detailed-exitcode"]));
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains(&format!("{CONFIG} must be replaced")), "{out}");
    assert!(
        out.contains("namespace \"cluster-config\" -> gitops cannot change in place"),
        "{out}"
    );
    assert!(out.contains("1 to add, 0 to change, 1 to destroy"), "{out}");
    let (code, out, err) =
        tokio::task::block_in_place(|| run(&w, &["apply", "-f", &moved, "--auto-approve"]));
    assert_eq!(code, 0, "{out}{err}");
    let p = configuration(&w).unwrap()["properties"].clone();
    assert_eq!(p["namespace"], "gitops");
    assert_eq!(p["complianceState"], "Compliant");
    assert_eq!(
        w.sandbox
            .arm()
            .flux_protected_settings(&s, rg, c, "cluster-config")
            .unwrap()["httpsKey"],
        base64::engine::general_purpose::STANDARD.encode(KEY),
        "the key is sent again to the new configuration"
    );
    let (code, out, err) = tokio::task::block_in_place(|| run(&w, &plan));
    assert_eq!(code, 2, "back to the file's namespace:\n{out}{err}");
    let (code, out, err) =
        tokio::task::block_in_place(|| run(&w, &["apply", "-f", FLUX, "--auto-approve"]));
    assert_eq!(code, 0, "{out}{err}");

    // The repository breaks, and a change is applied: the apply-time compliance check fails.
    w.sandbox.arm().set_broken_repository(URL);
    let changed = w.dir.join("flux-changed.yaml");
    let text = std::fs::read_to_string(root().join(FLUX))
        .unwrap()
        .replace("path: ./apps/staging", "path: ./apps/production");
    std::fs::write(&changed, text).unwrap();
    let changed = changed.display().to_string();
    let (code, out, err) =
        tokio::task::block_in_place(|| run(&w, &["plan", "-f", &changed, "--detailed-exitcode"]));
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains(&format!("{CONFIG} will be updated in place")),
        "{out}"
    );
    assert!(out.contains("0 to add, 1 to change, 0 to destroy"), "{out}");
    let (code, out, err) =
        tokio::task::block_in_place(|| run(&w, &["apply", "-f", &changed, "--auto-approve"]));
    assert_eq!(code, 1, "{out}{err}");
    let text = format!("{out}{err}");
    assert!(text.contains("Non-Compliant"), "{text}");
    assert!(
        text.contains(&format!(
            "failed to checkout and determine revision: unable to clone '{URL}'"
        )),
        "the controllers' message:\n{text}"
    );
    assert_eq!(
        configuration(&w).unwrap()["properties"]["kustomizations"]["apps"]["path"],
        "./apps/production",
        "the write itself went through"
    );
    let (code, out, err) =
        tokio::task::block_in_place(|| run(&w, &["plan", "-f", &changed, "--detailed-exitcode"]));
    assert_eq!(code, 0, "nothing to change:\n{out}{err}");
    assert!(
        format!("{out}{err}").contains("is Non-Compliant (as Flux last reported it)"),
        "but the plan warns:\n{out}{err}"
    );

    // Gone from the file: pruned (found by discovery on the stack's cluster), with the
    // extension that was only there for it.
    let without = w.dir.join("flux-without.yaml");
    let text = std::fs::read_to_string(root().join(FLUX)).unwrap();
    let text = &text[..text.find("    fluxConfigurations:").unwrap()];
    std::fs::write(&without, text).unwrap();
    let without = without.display().to_string();
    let (code, out, err) =
        tokio::task::block_in_place(|| run(&w, &["plan", "-f", &without, "--detailed-exitcode"]));
    assert_eq!(code, 2, "{out}{err}");
    for a in [CONFIG, EXTENSION] {
        assert!(
            out.contains(&format!("{a} will be destroyed")),
            "{a}:\n{out}"
        );
    }
    assert!(out.contains("0 to add, 0 to change, 2 to destroy"), "{out}");

    // Destroy: the configuration, then its extension, then the cluster.
    let (code, out, err) =
        tokio::task::block_in_place(|| run(&w, &["destroy", "-f", &changed, "--auto-approve"]));
    assert_eq!(code, 0, "{out}{err}");
    let text = format!("{out}{err}");
    let at = |what: &str| {
        text.find(&format!("{what}: Destruction complete"))
            .unwrap_or_else(|| panic!("{what} destroyed:\n{text}"))
    };
    let (config, extension, cluster) = (
        at(CONFIG),
        at(EXTENSION),
        at("arc.connectedCluster.mynewcluster"),
    );
    assert!(
        config < extension && extension < cluster,
        "reverse order:\n{text}"
    );
    assert!(configuration(&w).is_none());
    assert!(w.sandbox.arm().connected_clusters().is_empty());

    // The key, in anything arcplan printed.
    let transcript = w.transcript.borrow().clone();
    assert!(!transcript.contains(KEY), "a protected setting leaked");
    assert!(
        !transcript.contains(&base64::engine::general_purpose::STANDARD.encode(KEY)),
        "a protected setting leaked (base64)"
    );
    w.assert_no_secrets(&[]);
}
