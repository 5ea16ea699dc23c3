//! In-cluster mode (`--in-cluster CLUSTER`): arcplan as a pod of the cluster it onboards reaches
//! its API server the way a pod does (KUBERNETES_SERVICE_HOST/_PORT, the service account's CA
//! and token files) and changes only that cluster's slice; what clusters share is the fleet's
//! run's. Here the "pod" is this test's process pointed at the sandbox's Kubernetes API, and the
//! Job of `examples/k8s/in-cluster-job.yaml` passes the real kubectl's server-side dry run.

mod common;

use common::*;

/// A service account directory as a pod mounts it (ca.crt, token, namespace), from the sandbox's
/// CA and kubeconfig; returns it with the API server's host and port.
fn service_account(w: &World) -> (std::path::PathBuf, String, String) {
    let kubeconfig: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(w.dir.join("kubeconfig")).unwrap())
            .unwrap();
    let server = kubeconfig["clusters"][0]["cluster"]["server"]
        .as_str()
        .unwrap();
    let token = kubeconfig["users"][0]["user"]["token"].as_str().unwrap();
    let (host, port) = server
        .trim_start_matches("https://")
        .rsplit_once(':')
        .unwrap();
    let sa = w.dir.join("serviceaccount");
    std::fs::create_dir_all(&sa).unwrap();
    std::fs::copy(w.dir.join("ca.pem"), sa.join("ca.crt")).unwrap();
    std::fs::write(sa.join("token"), token).unwrap();
    std::fs::write(sa.join("namespace"), "arcplan").unwrap();
    (sa, host.to_owned(), port.to_owned())
}

fn run_env(w: &World, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let o = w.spawn(args, env).wait_with_output().unwrap();
    w.record(&format!("arcplan {}", args.join(" ")), &o)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_cluster_run_onboards_only_its_cluster() {
    let w = World::start().await;
    let (sa, host, port) = service_account(&w);
    let sa_dir = sa.display().to_string();
    let pod = [
        ("KUBERNETES_SERVICE_HOST", host.as_str()),
        ("KUBERNETES_SERVICE_PORT", port.as_str()),
        ("ARCPLAN_SERVICE_ACCOUNT_DIR", sa_dir.as_str()),
    ];
    let in_cluster = [
        "apply",
        QUICKSTART,
        "--in-cluster",
        "mynewcluster",
        "--sandbox-azure-only",
        "--auto-approve",
    ];

    // Not in a pod, or naming a cluster the file does not have: refused, saying why.
    let (code, _, err) = tokio::task::block_in_place(|| run_env(&w, &in_cluster, &[]));
    assert_eq!(code, 1);
    assert!(err.contains("KUBERNETES_SERVICE_HOST"), "{err}");
    let mut wrong = in_cluster;
    wrong[3] = "mynewclustr";
    let (code, _, err) = tokio::task::block_in_place(|| run_env(&w, &wrong, &pod));
    assert_eq!(code, 1);
    assert!(err.contains("did you mean `mynewcluster`?"), "{err}");

    // The fleet's run makes what the clusters share (here: everything but the cluster's slice).
    let (code, out, err) = tokio::task::block_in_place(|| {
        w.run(&[
            "apply",
            "-f",
            QUICKSTART,
            "--exclude",
            "k8s.onboardingKey.mynewcluster",
            "--auto-approve",
        ])
    });
    assert_eq!(code, 0, "{out}{err}");

    // The pod's run: its own cluster only, through the service account.
    let (code, out, err) = tokio::task::block_in_place(|| {
        run_env(
            &w,
            &[
                "plan",
                QUICKSTART,
                "--in-cluster",
                "mynewcluster",
                "--sandbox-azure-only",
            ],
            &pod,
        )
    });
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("k8s.onboardingKey.mynewcluster will be created"),
        "{out}"
    );
    assert!(
        !out.contains("azure.resourceGroup.myAzureResourceGroup will be"),
        "{out}"
    );
    let (code, out, err) = tokio::task::block_in_place(|| run_env(&w, &in_cluster, &pod));
    assert_eq!(code, 0, "{out}{err}");
    let cluster = w
        .sandbox
        .arm()
        .connected_cluster(
            &w.sandbox.subscription_ids()[0],
            "myAzureResourceGroup",
            "mynewcluster",
        )
        .expect("the connected cluster");
    assert_eq!(cluster["properties"]["connectivityStatus"], "Connected");

    // Converged, as the fleet's run sees it.
    let (code, out, err) =
        tokio::task::block_in_place(|| w.run(&["plan", "-f", QUICKSTART, "--detailed-exitcode"]));
    assert_eq!(code, 0, "{out}{err}");
    w.assert_no_secrets(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_cluster_job_passes_a_server_side_dry_run() {
    let Some(kubectl) = kubectl_path() else {
        return;
    };
    let w = World::start().await;
    let file = root().join("examples/k8s/in-cluster-job.yaml");
    let run = |args: &[&str]| w.kubectl(kubectl, args);
    tokio::task::block_in_place(|| {
        let (ok, out) = run(&["create", "namespace", "arcplan"]);
        assert!(ok, "{out}");
        let (ok, out) = run(&["apply", "--dry-run=server", "-f", file.to_str().unwrap()]);
        assert!(ok, "{out}");
        for made in [
            "serviceaccount/arcplan created (server dry run)",
            "clusterrolebinding.rbac.authorization.k8s.io/arcplan-onboarding created (server dry run)",
            "job.batch/arcplan-onboard created (server dry run)",
        ] {
            assert!(out.contains(made), "{made}:\n{out}");
        }
    });
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("--in-cluster \"$CLUSTER\""),
        "the Job runs in-cluster mode"
    );
}
