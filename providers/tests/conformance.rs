//! The cluster conformance suite: the Kubernetes side of arcplan, written once and run against
//! the sandbox's Kubernetes emulator (default) and against a real kube-apiserver when
//! `ARCPLAN_CONFORMANCE_KUBECONFIG` names its kubeconfig (`scripts/kube-apiserver.sh start DIR`
//! writes one with contexts `admin` and `norights`). A test that passes against the real server
//! and fails against the emulator is a bug in the emulator.
//!
//! Two kinds of tests: the provider driven by the engine (onboarding key, ownership, agents by
//! server-side apply, drift, prune, destroy and namespace termination, the lock), and the API
//! behaviours the provider relies on (Status bodies, SSA conflicts and managedFields,
//! resourceVersion conflicts, 403/401, discovery, label selectors, defaults). Values that
//! legitimately differ between servers (versions, generated names, timestamps, the user names
//! of the tokens) are compared by shape, everything else exactly.

#[path = "conformance/api.rs"]
mod api;
#[path = "conformance/engine.rs"]
mod engine;
#[path = "conformance/target.rs"]
mod target;

use arcplan_engine::plan::{Action, PlanMode, ReasonCode};
use base64::Engine as _;
use engine::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::{Value, json};
use std::time::Duration;
use target::*;
use tokio_util::sync::CancellationToken;

const NS: &str = "azure-arc";

fn cm(name: &str, labels: Value, data: Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "data": data}))
        .unwrap()
}

fn names<T: kube::Resource>(items: &[T]) -> Vec<String> {
    items
        .iter()
        .map(|o| o.meta().name.clone().unwrap())
        .collect()
}

/// The `fieldsV1` of `manager`'s entry with `operation` in an object's managedFields.
fn fields_of(obj: &Value, manager: &str, operation: &str) -> Option<Value> {
    obj.pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .find(|m| m["manager"] == manager && m["operation"] == operation)
        .map(|m| m["fieldsV1"].clone())
}

fn to_value<T: serde::Serialize>(o: &T) -> Value {
    serde_json::to_value(o).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The provider, driven by the engine.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_key_secret_and_ownership_configmap() {
    let t = Target::start_exclusive("key").await;
    let _controller = t.deployment_controller(NS);
    let e = Engine::new(&t, "admin", MANIFESTS);
    let p1 = e.plan(PlanMode::Normal).await.expect("first plan");
    assert_eq!(action(&p1, KEY), Action::Create);
    assert!(
        p1.change(&addr(KEY))
            .unwrap()
            .sensitive_paths
            .contains(&"/privateKey".to_owned())
    );
    e.apply(&p1).await;

    let secrets: Api<Secret> = Api::namespaced(t.admin.clone(), NS);
    let secret = secrets
        .get("azure-arc-connect-privatekey")
        .await
        .expect("the key Secret");
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    assert_eq!(
        secret.metadata.labels.as_ref().unwrap()["app.kubernetes.io/managed-by"],
        "arcplan"
    );
    let pem = String::from_utf8(secret.data.as_ref().unwrap()["privateKey"].0.clone()).unwrap();
    assert!(
        pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
        "the Secret holds a PKCS#1 PEM"
    );
    let public = arcplan_sandbox::agents::public_key_of_pem(&pem).unwrap();
    {
        let puts = e.azure.puts.lock().unwrap();
        assert_eq!(puts.len(), 1);
        assert!(
            puts[0].0,
            "the Secret exists before the connected cluster is PUT"
        );
        assert_eq!(puts[0].1, json!(public));
    }

    let cms: Api<ConfigMap> = Api::namespaced(t.admin.clone(), NS);
    let own = cms
        .get("azure-clusterconfig")
        .await
        .expect("ownership ConfigMap");
    let data = own.data.unwrap();
    assert_eq!(data["AZURE_RESOURCE_NAME"], "c1");
    assert_eq!(data["AZURE_RESOURCE_GROUP"], "rg1");
    assert_eq!(data["AZURE_SUBSCRIPTION_ID"], SUB);
    assert_eq!(data["AZURE_REGION"], "eastus");
    assert_eq!(
        own.metadata.labels.unwrap()["app.kubernetes.io/managed-by"],
        "arcplan"
    );

    // Converged: nothing to do, and the public key is re-derived from the Secret.
    let p2 = e.plan(PlanMode::Normal).await.expect("second plan");
    assert!(!p2.has_changes(), "{:#?}", changes(&p2));
    assert_eq!(
        p2.change(&addr(KEY)).unwrap().outputs.as_ref().unwrap()["publicKey"],
        json!(public)
    );

    // The Secret is lost: a new key is planned and the connected cluster replaced.
    secrets
        .delete("azure-arc-connect-privatekey", &DeleteParams::default())
        .await
        .unwrap();
    let p3 = e.plan(PlanMode::Normal).await.expect("plan after key loss");
    assert_eq!(action(&p3, KEY), Action::Create);
    assert_eq!(action(&p3, CC), Action::Replace);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_are_server_side_applied_and_become_available() {
    let t = Target::start_exclusive("agents").await;
    let _controller = t.deployment_controller(NS);
    let e = Engine::new(&t, "admin", MANIFESTS);
    let p1 = e.plan(PlanMode::Normal).await.expect("plan");
    assert_eq!(action(&p1, AGENTS), Action::Create);
    e.apply(&p1).await;

    let deployments: Api<Deployment> = Api::namespaced(t.admin.clone(), NS);
    let list = deployments.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 9, "{:?}", names(&list.items));
    for d in &list.items {
        let v = to_value(d);
        assert_eq!(
            v["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "arcplan"
        );
        let f = fields_of(&v, "arcplan", "Apply").expect("server-side applied by arcplan");
        assert_eq!(f["f:spec"]["f:replicas"], json!({}), "{f}");
        assert_eq!(
            f["f:metadata"]["f:labels"]["f:app.kubernetes.io/managed-by"],
            json!({})
        );
        assert!(f.pointer("/f:status").is_none(), "{f}");
        assert_eq!(v["metadata"]["generation"], 1);
        assert!(arcplan_providers::kubernetes::readiness::deployment_available(d));
    }
    let progress = e.events.progress();
    assert!(
        progress
            .iter()
            .any(|m| m == "9/9 agent deployments available"),
        "{progress:?}"
    );
    let p2 = e.plan(PlanMode::Normal).await.expect("second plan");
    assert!(!p2.has_changes(), "{:#?}", changes(&p2));
    let ac = p2.change(&addr(AGENTS)).unwrap();
    assert_eq!(ac.outputs.as_ref().unwrap()["ready"], true);
    assert_eq!(ac.outputs.as_ref().unwrap()["agentCount"], 9);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_detected_and_repaired() {
    let t = Target::start_exclusive("drift").await;
    let _controller = t.deployment_controller(NS);
    let e = Engine::new(&t, "admin", MANIFESTS);
    e.converge().await;

    let deployments: Api<Deployment> = Api::namespaced(t.admin.clone(), NS);
    deployments
        .delete("config-agent", &DeleteParams::background())
        .await
        .unwrap();
    // Someone edits a replica count with an update (another field manager).
    let mut metrics = deployments.get("metrics-agent").await.unwrap();
    metrics.spec.as_mut().unwrap().replicas = Some(3);
    let pp = PostParams {
        field_manager: Some("kubectl-edit".into()),
        ..Default::default()
    };
    let edited = deployments
        .replace("metrics-agent", &pp, &metrics)
        .await
        .unwrap();
    assert_eq!(edited.metadata.generation, Some(2));
    let ev = to_value(&edited);
    assert_eq!(
        fields_of(&ev, "kubectl-edit", "Update").expect("the editor's entry"),
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(
        fields_of(&ev, "arcplan", "Apply").unwrap()["f:spec"]
            .get("f:replicas")
            .is_none(),
        "the update took spec.replicas from arcplan"
    );
    eventually("config-agent gone", Duration::from_secs(30), || {
        let d = deployments.clone();
        async move { matches!(d.get_opt("config-agent").await, Ok(None)) }
    })
    .await;

    let p = e.plan(PlanMode::Normal).await.expect("drift plan");
    let c = p.change(&addr(AGENTS)).unwrap();
    assert_eq!(c.action, Action::Update);
    let why = &c.reason.as_ref().unwrap().message;
    assert!(
        why.contains("Deployment azure-arc/config-agent: missing"),
        "{why}"
    );
    assert!(
        why.contains("Deployment azure-arc/metrics-agent: spec.replicas: 3 → 1"),
        "{why}"
    );
    assert_eq!(action(&p, KEY), Action::NoOp);
    e.apply(&p).await;

    let repaired = deployments.get("metrics-agent").await.unwrap();
    assert_eq!(repaired.spec.as_ref().unwrap().replicas, Some(1));
    let rv = to_value(&repaired);
    assert_eq!(
        fields_of(&rv, "arcplan", "Apply").unwrap()["f:spec"]["f:replicas"],
        json!({}),
        "the forced apply took spec.replicas back"
    );
    assert!(
        fields_of(&rv, "kubectl-edit", "Update").is_none(),
        "the editor owns nothing any more: {}",
        rv["metadata"]["managedFields"]
    );
    assert!(deployments.get_opt("config-agent").await.unwrap().is_some());
    let again = e.plan(PlanMode::Normal).await.expect("plan after repair");
    assert!(!again.has_changes(), "{:#?}", changes(&again));
    t.stop().await;
}

fn deployment_yaml(name: &str) -> String {
    format!(
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: {name}\n        image: mcr.microsoft.com/azurearck8s/{name}:1.0.0\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_no_longer_in_the_set_are_pruned_by_label() {
    let t = Target::start_exclusive("prune").await;
    let _controller = t.deployment_controller(NS);
    let agents = "      installer: manifests\n      manifests: agents.yaml\n      timeout: 90s\n";
    let sa = "---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: azure-arc-operator\n";
    std::fs::write(
        t.dir.join("agents.yaml"),
        format!("{sa}{}{}", deployment_yaml("a1"), deployment_yaml("a2")),
    )
    .unwrap();
    let e = Engine::new(&t, "admin", agents);
    e.converge().await;
    let deployments: Api<Deployment> = Api::namespaced(t.admin.clone(), NS);
    let listed = deployments
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=arcplan"))
        .await
        .unwrap();
    assert_eq!(names(&listed.items), ["a1", "a2"]);
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(t.admin.clone(), NS);
    assert!(sas.get_opt("azure-arc-operator").await.unwrap().is_some());
    assert!(!e.plan(PlanMode::Normal).await.unwrap().has_changes());

    std::fs::write(
        t.dir.join("agents.yaml"),
        format!("{sa}{}", deployment_yaml("a1")),
    )
    .unwrap();
    let p = e.plan(PlanMode::Normal).await.expect("plan");
    let c = p.change(&addr(AGENTS)).unwrap();
    assert_eq!(c.action, Action::Update);
    let why = &c.reason.as_ref().unwrap().message;
    assert!(
        why.contains("Deployment azure-arc/a2: no longer in the set (pruned)"),
        "{why}"
    );
    e.apply(&p).await;
    eventually("a2 pruned", Duration::from_secs(30), || {
        let d = deployments.clone();
        async move { matches!(d.get_opt("a2").await, Ok(None)) }
    })
    .await;
    assert!(deployments.get_opt("a1").await.unwrap().is_some());
    let again = e.plan(PlanMode::Normal).await.expect("plan");
    assert!(!again.has_changes(), "{:#?}", changes(&again));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_waits_for_the_namespaces_to_terminate() {
    let t = Target::start_exclusive("destroy").await;
    let _controller = t.deployment_controller(NS);
    let e = Engine::new(&t, "admin", MANIFESTS);
    e.converge().await;
    let pd = e.plan(PlanMode::Destroy).await.expect("destroy plan");
    let ad = pd.change(&addr(AGENTS)).unwrap();
    assert_eq!(ad.action, Action::Delete);
    assert_eq!(
        ad.reason.as_ref().unwrap().code,
        ReasonCode::DeleteBecauseDestroy
    );
    assert_eq!(action(&pd, KEY), Action::Delete);
    e.apply(&pd).await;
    let namespaces: Api<Namespace> = Api::all(t.admin.clone());
    for ns in ["azure-arc", "azure-arc-release"] {
        assert!(
            namespaces.get_opt(ns).await.unwrap().is_none(),
            "destroy returns once {ns} is gone"
        );
    }
    let after = e.plan(PlanMode::Destroy).await.expect("plan after destroy");
    assert!(!after.has_changes(), "{:#?}", changes(&after));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_terminates_then_disappears_with_its_content() {
    let t = Target::start("nsterm").await;
    let ns = t.namespace("term").await;
    let namespaces: Api<Namespace> = Api::all(t.admin.clone());
    let created = to_value(&namespaces.get(&ns).await.unwrap());
    assert_eq!(created["spec"], json!({"finalizers": ["kubernetes"]}));
    assert_eq!(created["status"], json!({"phase": "Active"}));
    let cms: Api<ConfigMap> = Api::namespaced(t.admin.clone(), &ns);
    cms.create(
        &PostParams::default(),
        &cm("inside", json!({}), json!({"k": "v"})),
    )
    .await
    .unwrap();

    let deleted = namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .unwrap();
    let deleted = deleted
        .left()
        .expect("deleting a namespace returns it, Terminating");
    let dv = to_value(&deleted);
    assert_eq!(dv["status"]["phase"], "Terminating");
    assert!(dv["metadata"]["deletionTimestamp"].is_string(), "{dv}");
    assert_eq!(dv["spec"], json!({"finalizers": ["kubernetes"]}));

    // No new content while it terminates.
    let s = status_of(
        cms.create(&PostParams::default(), &cm("late", json!({}), json!({})))
            .await,
    );
    assert_eq!(s.code, 403);
    assert_eq!(s.reason, "Forbidden");
    assert_eq!(
        s.message,
        format!(
            "configmaps \"late\" is forbidden: unable to create new content in namespace {ns} because it is being terminated"
        )
    );
    let details = to_value(s.details.as_ref().unwrap());
    assert_eq!(details["name"], "late");
    assert_eq!(details["kind"], "configmaps");
    assert_eq!(details["causes"][0]["reason"], "NamespaceTerminating");
    assert_eq!(details["causes"][0]["field"], "metadata.namespace");

    eventually("the namespace is gone", Duration::from_secs(60), || {
        let n = namespaces.clone();
        let ns = ns.clone();
        async move { matches!(n.get_opt(&ns).await, Ok(None)) }
    })
    .await;
    let s = status_of(cms.get("inside").await);
    assert_eq!(s.code, 404);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_lease_is_contended_then_released() {
    let t = Target::start_exclusive("lock").await;
    let e = Engine::new(&t, "admin", MANIFESTS);
    let cluster = json!({"kubeconfig": "kubeconfig", "context": "admin"});
    let cancel = CancellationToken::new();
    let first = e
        .provider
        .acquire_lock(
            &cluster,
            "alice@host (pid 1)",
            Duration::from_secs(5),
            &cancel,
        )
        .await
        .expect("first holder");
    assert_eq!(first.namespace(), "kube-system");
    let leases: Api<Lease> = Api::namespaced(t.admin.clone(), "kube-system");
    let lease = to_value(&leases.get("arcplan-lock").await.unwrap());
    assert_eq!(lease["spec"]["holderIdentity"], "alice@host (pid 1)");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 15);
    for f in ["acquireTime", "renewTime"] {
        let ts = lease["spec"][f].as_str().unwrap();
        // MicroTime: RFC 3339 with exactly six fractional digits.
        assert_eq!(ts.len(), "2020-01-01T00:00:00.000000Z".len(), "{f}: {ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{f}: {ts}");
    }

    let second = e
        .provider
        .acquire_lock(&cluster, "bob", Duration::from_secs(2), &cancel)
        .await;
    let d = second.expect_err("the second holder waits and fails");
    assert_eq!(d.code, "k8s-locked");
    assert!(d.message.contains("`alice@host (pid 1)`"), "{}", d.message);
    assert!(
        d.message.contains("kube-system/arcplan-lock"),
        "{}",
        d.message
    );
    assert!(!first.is_lost());

    // An update with the old resourceVersion loses (how two acquirers never both win).
    let stale: Lease = serde_json::from_value(lease.clone()).unwrap();
    let mut taken = leases.get("arcplan-lock").await.unwrap();
    taken.metadata.resource_version = stale.metadata.resource_version.clone();
    taken.spec.as_mut().unwrap().holder_identity = Some("mallory".into());
    let renewed_since = taken.metadata.resource_version
        != lease["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_owned);
    if !renewed_since {
        // Make sure the stored object moved on.
        let mut bump = leases.get("arcplan-lock").await.unwrap();
        bump.metadata.annotations = Some([("touched".to_owned(), "1".to_owned())].into());
        leases
            .replace("arcplan-lock", &PostParams::default(), &bump)
            .await
            .unwrap();
    }
    let s = status_of(
        leases
            .replace("arcplan-lock", &PostParams::default(), &taken)
            .await,
    );
    assert_eq!(s.code, 409);
    assert_eq!(s.reason, "Conflict");

    first.release().await.expect("released");
    assert!(leases.get_opt("arcplan-lock").await.unwrap().is_none());
    let bob = e
        .provider
        .acquire_lock(&cluster, "bob", Duration::from_secs(5), &cancel)
        .await
        .expect("free again");
    bob.release().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_no_rights_token_gets_403_and_plans_fail_clearly() {
    let t = Target::start("forbidden").await;
    let user_re = |m: &str, rest: &str| {
        // `... User "<name>" <rest>`: the user names of the two targets' tokens differ.
        let (head, tail) = m.split_once("User \"").unwrap_or_else(|| panic!("{m}"));
        let (_user, tail) = tail.split_once('"').unwrap();
        format!("{head}User \"*\"{tail}") == rest
    };
    let secrets: Api<Secret> = Api::namespaced(t.norights.clone(), "default");
    let s = status_of(secrets.list(&ListParams::default()).await);
    assert_eq!(s.code, 403);
    assert_eq!(s.status, Some(kube::core::response::StatusSummary::Failure));
    assert_eq!(s.reason, "Forbidden");
    assert!(
        user_re(
            &s.message,
            "secrets is forbidden: User \"*\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\""
        ),
        "{}",
        s.message
    );
    let details = to_value(s.details.as_ref().unwrap());
    assert_eq!(details, json!({"kind": "secrets"}));

    let cms: Api<ConfigMap> = Api::namespaced(t.norights.clone(), "kube-system");
    let s = status_of(cms.get("x").await);
    assert!(
        user_re(
            &s.message,
            "configmaps \"x\" is forbidden: User \"*\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"kube-system\""
        ),
        "{}",
        s.message
    );
    assert_eq!(
        to_value(s.details.as_ref().unwrap()),
        json!({"name": "x", "kind": "configmaps"})
    );

    let deployments: Api<Deployment> = Api::all(t.norights.clone());
    let s = status_of(deployments.list(&ListParams::default()).await);
    assert!(
        user_re(
            &s.message,
            "deployments.apps is forbidden: User \"*\" cannot list resource \"deployments\" in API group \"apps\" at the cluster scope"
        ),
        "{}",
        s.message
    );
    assert_eq!(
        to_value(s.details.as_ref().unwrap()),
        json!({"group": "apps", "kind": "deployments"})
    );

    // The no-rights user may still ask what it may do.
    let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": "create", "resource": "namespaces"}}});
    let req = http::Request::post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&review).unwrap())
        .unwrap();
    let (code, body) = raw(&t.norights, req).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["status"]["allowed"], false, "{body}");

    // An unknown token is 401 with the apiserver's Status.
    let req = http::Request::get("/api/v1/namespaces")
        .header("authorization", "Bearer not-a-token")
        .body(Vec::new())
        .unwrap();
    let client = unauthenticated_client(&t).await;
    let (code, body) = raw(&client, req).await;
    assert_eq!(code, 401);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    );

    // The provider's plan through the no-rights context fails with a clear diagnostic.
    let e = Engine::new(&t, "norights", MANIFESTS);
    let err = e.plan(PlanMode::Normal).await.expect_err("403");
    let d = err
        .iter()
        .find(|d| d.code == "k8s-forbidden")
        .unwrap_or_else(|| panic!("{err:#?}"));
    assert!(d.message.contains("context `norights`"), "{}", d.message);
    assert!(d.hint.as_deref().unwrap().contains("cluster-admin"));
    t.stop().await;
}

/// A client for the target's cluster without credentials (the test sets its own header).
async fn unauthenticated_client(t: &Target) -> kube::Client {
    let mut kc = kube::config::Kubeconfig::read_from(t.kubeconfig()).unwrap();
    for u in &mut kc.auth_infos {
        if let Some(a) = u.auth_info.as_mut() {
            a.token = None;
        }
    }
    let opts = kube::config::KubeConfigOptions {
        context: Some("admin".into()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The API behaviours the provider relies on: in `conformance/api.rs`.
