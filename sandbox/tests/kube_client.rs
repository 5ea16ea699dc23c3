//! The Kubernetes API emulator driven by the real `kube` client over HTTPS (CA trusted,
//! certificate verification on).

use std::net::SocketAddr;
use std::time::Duration;

use arcplan_sandbox as sandbox;
use base64::Engine;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use sandbox::kube::{KubeApi, KubeOptions};
use sandbox::tls::{TlsMaterial, serve_https};
use serde_json::json;
use tokio_util::sync::CancellationToken;

struct Sandbox {
    api: KubeApi,
    addr: SocketAddr,
    ca_pem: String,
    cancel: CancellationToken,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Sandbox {
    async fn start() -> Sandbox {
        let opts = KubeOptions {
            deployment_ready_delay: Duration::from_millis(40),
            namespace_delete_delay: Duration::from_millis(40),
            ..KubeOptions::default()
        };
        let api = KubeApi::new(opts);
        let tls = TlsMaterial::generate().expect("tls");
        let cancel = CancellationToken::new();
        let handle = serve_https(
            api.router(),
            "127.0.0.1:0".parse().expect("addr"),
            &tls,
            cancel.clone(),
        )
        .await
        .expect("serve");
        let (a, c) = (api.clone(), cancel.clone());
        tokio::spawn(async move { a.run_controllers(c).await });
        Sandbox {
            api,
            addr: handle.addr,
            ca_pem: tls.ca_pem().to_string(),
            cancel,
        }
    }

    fn kubeconfig(&self, token: &str) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sandbox\n  cluster:\n    server: https://{}\n    certificate-authority-data: {ca}\nusers:\n- name: user\n  user:\n    token: {token}\ncontexts:\n- name: sandbox\n  context:\n    cluster: sandbox\n    user: user\ncurrent-context: sandbox\n",
            self.addr
        )
    }

    async fn client_with(&self, token: &str) -> Client {
        let kc = Kubeconfig::from_yaml(&self.kubeconfig(token)).expect("kubeconfig");
        let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .expect("config");
        Client::try_from(config).expect("client")
    }

    async fn client(&self) -> Client {
        self.client_with(&self.api.admin_token()).await
    }
}

fn api_error(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

fn ns_obj(name: &str) -> Namespace {
    serde_json::from_value(json!({"metadata": {"name": name}})).expect("ns")
}

fn cm(name: &str, labels: serde_json::Value, data: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "data": data}))
        .expect("cm")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_create_list_terminate_and_disappear() {
    let sb = Sandbox::start().await;
    let client = sb.client().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let created = nss
        .create(&PostParams::default(), &ns_obj("team-a"))
        .await
        .expect("create");
    assert_eq!(
        created.status.and_then(|s| s.phase).as_deref(),
        Some("Active")
    );
    let names: Vec<String> = nss
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    for n in ["default", "kube-system", "team-a"] {
        assert!(names.contains(&n.to_string()), "{names:?}");
    }
    let err = api_error(
        nss.create(&PostParams::default(), &ns_obj("team-a"))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));

    // Content of the namespace, then deletion.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team-a");
    cms.create(
        &PostParams::default(),
        &cm("c1", json!({}), json!({"k": "v"})),
    )
    .await
    .expect("cm");
    nss.delete("team-a", &DeleteParams::default())
        .await
        .expect("delete");
    let ns = nss.get("team-a").await.expect("still there");
    // Terminating right after the delete (the controller removes it after the delay).
    assert!(ns.metadata.deletion_timestamp.is_some());
    assert_eq!(
        ns.status.and_then(|s| s.phase).as_deref(),
        Some("Terminating")
    );
    let err = api_error(
        cms.create(&PostParams::default(), &cm("c2", json!({}), json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        err.message,
        "configmaps \"c2\" is forbidden: unable to create new content in namespace team-a because it is being terminated"
    );
    eventually("namespace gone", || async {
        nss.get_opt("team-a").await.expect("get").is_none()
    })
    .await;
    assert!(
        sb.api
            .get("v1", "ConfigMap", Some("team-a"), "c1")
            .is_none()
    );
    // Objects in a missing namespace: 404 for the namespace.
    let err = api_error(
        cms.create(&PostParams::default(), &cm("c3", json!({}), json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
    assert_eq!(err.message, "namespaces \"team-a\" not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_and_configmaps_crud_with_selectors_and_conflicts() {
    let sb = Sandbox::start().await;
    let client = sb.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for (name, labels) in [
        ("a", json!({"app": "web", "tier": "front"})),
        ("b", json!({"app": "web", "tier": "back"})),
        ("c", json!({"app": "db"})),
    ] {
        cms.create(
            &PostParams::default(),
            &cm(name, labels, json!({"x": name})),
        )
        .await
        .expect("create");
    }
    let names = |sel: &'static str| {
        let cms = cms.clone();
        async move {
            let mut v: Vec<String> = cms
                .list(&ListParams::default().labels(sel))
                .await
                .expect("list")
                .items
                .into_iter()
                .filter_map(|c| c.metadata.name)
                .collect();
            v.sort();
            v.join(",")
        }
    };
    assert_eq!(names("app=web").await, "a,b");
    assert_eq!(names("app==web,tier!=back").await, "a");
    assert_eq!(names("tier in (back,other)").await, "b");
    assert_eq!(names("tier notin (back)").await, "a,c");
    assert_eq!(names("tier").await, "a,b");
    assert_eq!(names("!tier").await, "c");
    let by_field = cms
        .list(&ListParams::default().fields("metadata.name=c"))
        .await
        .expect("fields");
    assert_eq!(by_field.items.len(), 1);
    let page = cms
        .list(&ListParams::default().limit(2))
        .await
        .expect("page");
    assert_eq!(page.items.len(), 2);
    let next = page.metadata.continue_.clone().expect("continue token");
    let rest = cms
        .list(&ListParams::default().limit(2).continue_token(&next))
        .await
        .expect("page 2");
    assert_eq!(rest.items.len(), 1);

    // Update with optimistic concurrency.
    let mut a = cms.get("a").await.expect("get");
    let stale = a.clone();
    a.data
        .get_or_insert_default()
        .insert("x".into(), "changed".into());
    let updated = cms
        .replace("a", &PostParams::default(), &a)
        .await
        .expect("replace");
    assert_ne!(
        updated.metadata.resource_version,
        stale.metadata.resource_version
    );
    let err = api_error(
        cms.replace("a", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; please apply your changes to the latest version and try again"
    );
    // Merge patch, then delete.
    let patched = cms
        .patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"y": "1"}})),
        )
        .await
        .expect("patch");
    assert_eq!(
        patched.data.expect("data").get("y").map(String::as_str),
        Some("1")
    );
    cms.delete("c", &DeleteParams::default())
        .await
        .expect("delete");
    let err = api_error(cms.get("c").await.unwrap_err());
    assert_eq!(
        (err.code, err.reason.as_str(), err.message.as_str()),
        (404, "NotFound", "configmaps \"c\" not found")
    );

    // Secrets: stringData becomes data, type defaults to Opaque.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let s: Secret =
        serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"key": "value"}}))
            .expect("secret");
    let created = secrets
        .create(&PostParams::default(), &s)
        .await
        .expect("create secret");
    assert_eq!(created.type_.as_deref(), Some("Opaque"));
    let data = created.data.expect("data");
    assert_eq!(
        data.get("key").map(|b| b.0.as_slice()),
        Some(b"value".as_slice())
    );
    secrets
        .delete("s", &DeleteParams::default())
        .await
        .expect("delete secret");
    assert!(secrets.get_opt("s").await.expect("get").is_none());

    // dryRun=All creates nothing.
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    cms.create(&dry, &cm("dry", json!({}), json!({})))
        .await
        .expect("dry run");
    assert!(cms.get_opt("dry").await.expect("get").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_noop_conflicts_force_and_managed_fields() {
    let sb = Sandbox::start().await;
    let client = sb.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let doc = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owned", "labels": {"app.kubernetes.io/managed-by": "arcplan"}}, "data": {"a": "1", "b": "2"}});
    let first = cms
        .patch("owned", &PatchParams::apply("arcplan"), &Patch::Apply(&doc))
        .await
        .expect("apply create");
    let mf = first
        .metadata
        .managed_fields
        .clone()
        .expect("managedFields");
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager.as_deref(), Some("arcplan"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));
    assert_eq!(mf[0].fields_type.as_deref(), Some("FieldsV1"));
    let fields = serde_json::to_value(&mf[0].fields_v1).expect("fields");
    assert_eq!(
        fields,
        json!({"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:app.kubernetes.io/managed-by": {}}}})
    );

    // Re-applying the same configuration changes nothing.
    let again = cms
        .patch("owned", &PatchParams::apply("arcplan"), &Patch::Apply(&doc))
        .await
        .expect("re-apply");
    assert_eq!(
        again.metadata.resource_version,
        first.metadata.resource_version
    );

    // Another manager changing a field it does not own: conflict.
    let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owned"}, "data": {"a": "9"}});
    let err = api_error(
        cms.patch(
            "owned",
            &PatchParams::apply("intruder"),
            &Patch::Apply(&other),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"arcplan\": .data.a"
    );
    let causes = err
        .details
        .as_ref()
        .map(|d| d.causes.clone())
        .unwrap_or_default();
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].reason, "FieldManagerConflict");
    assert_eq!(causes[0].field, ".data.a");

    // An update by kubectl-style Update manager, then SSA conflicts with it "using v1".
    cms.patch(
        "owned",
        &PatchParams {
            field_manager: Some("kubectl-edit".into()),
            ..PatchParams::default()
        },
        &Patch::Merge(json!({"data": {"c": "3"}})),
    )
    .await
    .expect("merge");
    let third = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owned"}, "data": {"c": "4"}});
    let err = api_error(
        cms.patch(
            "owned",
            &PatchParams::apply("arcplan"),
            &Patch::Apply(&third),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .data.c"
    );

    // Force takes ownership.
    let forced = cms
        .patch(
            "owned",
            &PatchParams::apply("intruder").force(),
            &Patch::Apply(&other),
        )
        .await
        .expect("force");
    assert_eq!(
        forced
            .data
            .as_ref()
            .and_then(|d| d.get("a"))
            .map(String::as_str),
        Some("9")
    );
    let mf = forced.metadata.managed_fields.expect("mf");
    let owner_of_a: Vec<_> = mf
        .iter()
        .filter(|e| {
            serde_json::to_value(&e.fields_v1)
                .expect("v")
                .pointer("/f:data/f:a")
                .is_some()
        })
        .filter_map(|e| e.manager.clone())
        .collect();
    assert_eq!(owner_of_a, vec!["intruder".to_string()]);

    // A field dropped by its sole applier disappears.
    let smaller = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owned", "labels": {"app.kubernetes.io/managed-by": "arcplan"}}, "data": {}});
    let after = cms
        .patch(
            "owned",
            &PatchParams::apply("arcplan"),
            &Patch::Apply(&smaller),
        )
        .await
        .expect("shrink");
    let data = after.data.unwrap_or_default();
    assert!(!data.contains_key("b"), "{data:?}");
    assert_eq!(data.get("a").map(String::as_str), Some("9"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_update_with_resource_version() {
    let sb = Sandbox::start().await;
    let client = sb.client().await;
    let leases: Api<Lease> = Api::namespaced(client, "kube-system");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "arcplan-lock"},
        "spec": {"holderIdentity": "apply-1", "leaseDurationSeconds": 30, "acquireTime": "2024-01-01T00:00:00.000000Z"}
    }))
    .expect("lease");
    let created = leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("create");
    let mut next = created.clone();
    next.spec.as_mut().expect("spec").holder_identity = Some("apply-2".into());
    let updated = leases
        .replace("arcplan-lock", &PostParams::default(), &next)
        .await
        .expect("update");
    assert_eq!(
        updated.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("apply-2")
    );
    let err = api_error(
        leases
            .replace("arcplan-lock", &PostParams::default(), &next)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_no_rights_token_and_access_reviews() {
    let sb = Sandbox::start().await;
    let nobody = sb.client_with(&sb.api.no_rights_token()).await;
    // Discovery and version are allowed.
    let version = nobody.apiserver_version().await.expect("version");
    assert_eq!(
        version.git_version,
        sandbox::kube::DEFAULT_KUBERNETES_VERSION
    );
    let err = api_error(
        Api::<Namespace>::all(nobody.clone())
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        err.message,
        "namespaces is forbidden: User \"sandbox-nobody\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
    );
    let err = api_error(
        Api::<Secret>::namespaced(nobody.clone(), "default")
            .get("x")
            .await
            .unwrap_err(),
    );
    assert_eq!(
        err.message,
        "secrets \"x\" is forbidden: User \"sandbox-nobody\" cannot get resource \"secrets\" in API group \"\" in the namespace \"default\""
    );
    let review: SelfSubjectAccessReview = serde_json::from_value(json!({
        "spec": {"resourceAttributes": {"verb": "create", "group": "rbac.authorization.k8s.io", "resource": "clusterrolebindings"}}
    }))
    .expect("review");
    let denied = Api::<SelfSubjectAccessReview>::all(nobody)
        .create(&PostParams::default(), &review)
        .await
        .expect("ssar");
    assert!(!denied.status.expect("status").allowed);
    let allowed = Api::<SelfSubjectAccessReview>::all(sb.client().await)
        .create(&PostParams::default(), &review)
        .await
        .expect("ssar");
    assert!(allowed.status.expect("status").allowed);

    let stranger = sb.client_with("not-a-token").await;
    let err = api_error(
        Api::<Namespace>::all(stranger)
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (401, "Unauthorized"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_becomes_available_and_owns_pods() {
    let sb = Sandbox::start().await;
    let client = sb.client().await;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns_obj("azure-arc"))
        .await
        .expect("ns");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "azure-arc");
    let doc = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "config-agent", "labels": {"app.kubernetes.io/component": "config-agent"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app.kubernetes.io/component": "config-agent"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/component": "config-agent"}},
                "spec": {"containers": [{"name": "config-agent", "image": "mcr.microsoft.com/azurearck8s/config-agent:1.21.10"}]}
            }
        }
    });
    let created = deployments
        .patch(
            "config-agent",
            &PatchParams::apply("arcplan"),
            &Patch::Apply(&doc),
        )
        .await
        .expect("apply");
    assert_eq!(created.metadata.generation, Some(1));
    eventually("deployment available", || async {
        let d = deployments.get("config-agent").await.expect("get");
        let st = d.status.unwrap_or_default();
        let available = st
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Available" && c.status == "True");
        available
            && st.available_replicas == Some(2)
            && st.ready_replicas == Some(2)
            && st.observed_generation == Some(1)
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "azure-arc");
    let list = pods
        .list(&ListParams::default().labels("app.kubernetes.io/component=config-agent"))
        .await
        .expect("pods");
    assert_eq!(list.items.len(), 2);
    for p in &list.items {
        assert!(
            p.metadata
                .name
                .as_deref()
                .unwrap_or_default()
                .starts_with("config-agent-")
        );
        assert_eq!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Running")
        );
        let owner = &p.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(owner.kind, "ReplicaSet");
    }
    // Re-applying the same manifest is a no-op; the status written by the controller is kept.
    let d = deployments.get("config-agent").await.expect("get");
    let again = deployments
        .patch(
            "config-agent",
            &PatchParams::apply("arcplan"),
            &Patch::Apply(&doc),
        )
        .await
        .expect("re-apply");
    assert_eq!(again.metadata.resource_version, d.metadata.resource_version);

    deployments
        .delete("config-agent", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("pods gone", || async {
        pods.list(&ListParams::default())
            .await
            .expect("pods")
            .items
            .is_empty()
    })
    .await;
    assert_eq!(
        sb.api.nodes_summary(),
        (3, 12, sandbox::kube::DEFAULT_KUBERNETES_VERSION.to_string())
    );
    assert!(sb.api.request_count() > 5);
}
