//! The Azure provider, driven by the engine, against the in-process sandbox over real HTTPS:
//! registration, groups, connected clusters, updates and replacements, role checks, faults,
//! failed operations, prune, request counts, and no secret in any output.

use arcplan_config::{Loaded, load_str};
use arcplan_engine::address::Address;
use arcplan_engine::diag::Diagnostics;
use arcplan_engine::events::{Event, EventSink};
use arcplan_engine::executor::{ApplyOptions, ApplyReport, StepStatus, apply};
use arcplan_engine::graph::ResourceGraph;
use arcplan_engine::plan::{Action, CheckStatus, Plan, PlanMode, ReasonCode};
use arcplan_engine::planner::{PlanOptions, plan};
use arcplan_engine::provider::Providers;
use arcplan_engine::testing::FakeProvider;
use arcplan_providers::azure::{self, provider::AzureProvider, provider::AzureSettings};
use arcplan_sandbox::arm::PrincipalRole;
use arcplan_sandbox::arm::RegistrationState;
use arcplan_sandbox::{Sandbox, SandboxOptions};
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEY_A: &str = include_str!("../../sandbox/tests/fixtures/key_a.pem");
const KEY_B: &str = include_str!("../../sandbox/tests/fixtures/key_b.pem");

fn public_key(pem: &str) -> String {
    use base64::Engine;
    use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPublicKey};
    let key = rsa::RsaPrivateKey::from_pkcs1_pem(pem).expect("fixture key");
    let der = key.to_public_key().to_pkcs1_der().expect("der");
    base64::engine::general_purpose::STANDARD.encode(der.as_bytes())
}

/// Records every event, to scan for secrets.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);
impl EventSink for Recorder {
    fn emit(&self, e: Event) {
        self.0
            .lock()
            .unwrap()
            .push(serde_json::to_string(&e).unwrap());
    }
}

struct World {
    sandbox: Sandbox,
    dir: PathBuf,
    kube_fake: Arc<FakeProvider>,
    azure: Arc<AzureProvider>,
    providers: Providers,
    loaded: Loaded,
    graph: ResourceGraph,
    events: Arc<Recorder>,
}

fn config_text(sb: &Sandbox, dir: &std::path::Path, location: &str, env_tag: &str) -> String {
    format!(
        r#"apiVersion: arcplan/v1
stack: azure-tests
azure:
  subscription: {sub}
  tenant: {tenant}
  cloud:
    name: ArcplanSandbox
    resourceManager: {arm}
    authorityHost: {authority}
    audience: https://management.azure.com/
    caBundle: {ca}
  credential:
    kind: servicePrincipal
    clientId: {client}
    clientSecret: {{ env: SANDBOX_SECRET }}
resourceProviders: [Microsoft.Kubernetes, Microsoft.KubernetesConfiguration, Microsoft.ExtendedLocation]
access:
  requireAnyRole: [Owner, Contributor, Kubernetes Cluster - Azure Arc Onboarding]
resourceGroups:
  - {{ name: arc-rg, location: eastus }}
clusters:
  - name: edge-01
    resourceGroup: arc-rg
    location: {location}
    tags: {{ env: {env_tag} }}
    distribution: k3s
    agents: {{ installer: manifests, timeout: 3s }}
"#,
        sub = sb.subscription_ids()[0],
        tenant = sb.tenant_id(),
        arm = sb.resource_manager(),
        authority = sb.authority_host(),
        ca = dir.join("ca.pem").display(),
        client = sb.client_id(),
    )
}

async fn world(opts: SandboxOptions) -> World {
    let sandbox = Sandbox::start(opts).await.expect("sandbox starts");
    let dir = std::env::temp_dir().join(format!(
        "arcplan-azure-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    sandbox.write_files(&dir).unwrap();
    let text = config_text(&sandbox, &dir, "eastus", "lab");
    let loaded = load_str(&text, "azure-tests.yaml").unwrap_or_else(|d| panic!("{d}"));
    let graph = arcplan_providers::kinds::lower(&loaded.config).unwrap();
    let secret = sandbox.client_secret().to_owned();
    let env = move |k: &str| (k == "SANDBOX_SECRET").then(|| secret.clone());
    let mut settings = AzureSettings::new("azure-tests", &sandbox.subscription_ids()[0]);
    settings.poll_interval = Duration::from_millis(50);
    let (azure, description) =
        azure::from_config(&loaded.config, &dir, &env, settings).unwrap_or_else(|d| panic!("{d}"));
    assert!(
        description.starts_with("service principal"),
        "{description}"
    );
    let azure = Arc::new(azure);
    let kube_fake = Arc::new(FakeProvider::new(&[
        arcplan_providers::kinds::ONBOARDING_KEY,
        arcplan_providers::kinds::ARC_AGENTS,
    ]));
    kube_fake.outputs.lock().unwrap().insert(
        Address::new(arcplan_providers::kinds::ONBOARDING_KEY, "edge-01"),
        json!({"publicKey": public_key(KEY_A)}),
    );
    let mut providers = Providers::new();
    providers.register(azure.clone());
    providers.register(kube_fake.clone());
    World {
        sandbox,
        dir,
        kube_fake,
        azure,
        providers,
        loaded,
        graph,
        events: Arc::new(Recorder::default()),
    }
}

impl World {
    fn opts(&self, mode: PlanMode) -> PlanOptions {
        PlanOptions {
            mode,
            stack: "azure-tests".into(),
            config_digest: self.loaded.digest.clone(),
            ..Default::default()
        }
    }

    async fn plan(&self, mode: PlanMode) -> Result<Plan, Diagnostics> {
        plan(
            &self.graph,
            &self.providers,
            &self.opts(mode),
            self.events.clone(),
        )
        .await
        .map(|(p, _)| p)
    }

    async fn apply(&self, p: &Plan) -> ApplyReport {
        apply(
            p,
            &self.providers,
            &ApplyOptions::default(),
            self.events.clone(),
        )
        .await
        .expect("applies")
    }

    fn reload(&mut self, location: &str, env_tag: &str) {
        let text = config_text(&self.sandbox, &self.dir, location, env_tag);
        self.loaded = load_str(&text, "azure-tests.yaml").unwrap();
        self.graph = arcplan_providers::kinds::lower(&self.loaded.config).unwrap();
    }

    /// Plays the cluster side in the sandbox's Kubernetes API: key Secret, ownership ConfigMap and
    /// one agent Deployment, as the agents installer would.
    fn install_agents(&self, key_pem: &str) {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let k = self.sandbox.kube();
        k.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "azure-arc"}}))
            .unwrap();
        k.put(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "azure-arc-connect-privatekey", "namespace": "azure-arc"}, "data": {"privateKey": b64(key_pem)}})).unwrap();
        k.put(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "azure-clusterconfig", "namespace": "azure-arc"}, "data": {
            "AZURE_SUBSCRIPTION_ID": self.sandbox.subscription_ids()[0], "AZURE_RESOURCE_GROUP": "arc-rg", "AZURE_RESOURCE_NAME": "edge-01",
            "AZURE_TENANT_ID": self.sandbox.tenant_id(), "AZURE_REGION": "eastus"}})).unwrap();
        k.put(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "clusterconnect-agent", "namespace": "azure-arc"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "cca"}}, "template": {"metadata": {"labels": {"app": "cca"}}, "spec": {"containers": [{"name": "a", "image": "agent"}]}}}})).unwrap();
    }

    /// Every byte the run produced that a user or a log could see.
    fn all_output(
        &self,
        plans: &[&Plan],
        reports: &[&ApplyReport],
        errors: &[&Diagnostics],
    ) -> String {
        let mut s = self.events.0.lock().unwrap().join("\n");
        for p in plans {
            s.push_str(&serde_json::to_string(p).unwrap());
        }
        for r in reports {
            s.push_str(&serde_json::to_string(r).unwrap());
        }
        for e in errors {
            s.push_str(&format!("{e}"));
        }
        s
    }
}

fn action(p: &Plan, a: &str) -> Action {
    p.change(&a.parse().unwrap())
        .unwrap_or_else(|| panic!("{a} not planned"))
        .action
}

fn step<'a>(r: &'a ApplyReport, a: &str) -> &'a StepStatus {
    &r.steps
        .iter()
        .find(|s| s.address.to_string() == a)
        .unwrap_or_else(|| panic!("{a} not applied"))
        .status
}

#[tokio::test]
async fn fresh_subscription_onboards_and_converges() {
    let w = world(SandboxOptions {
        registered_providers: vec![],
        registration_delay: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let first = w
        .plan(PlanMode::Normal)
        .await
        .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        action(&first, "azure.resourceProvider.Microsoft.Kubernetes"),
        Action::Create
    );
    assert_eq!(action(&first, "azure.resourceGroup.arc-rg"), Action::Create);
    assert_eq!(
        action(&first, "arc.connectedCluster.edge-01"),
        Action::Create
    );
    let rg_check = first
        .checks
        .iter()
        .find(|c| c.address.to_string() == "azure.roleCheck.arc-rg")
        .unwrap();
    assert_eq!(rg_check.status, CheckStatus::Pass, "{rg_check:?}");
    assert!(
        rg_check
            .summary
            .contains("Microsoft.Kubernetes/connectedClusters/write"),
        "{}",
        rg_check.summary
    );

    w.install_agents(KEY_A);
    let report = w.apply(&first).await;
    assert!(report.is_success(), "{report:#?}");
    // Registration took simulated time and was reported as progress.
    assert!(
        w.events
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.contains("apply_progress") && e.contains("Registering"))
    );
    let cc = w
        .sandbox
        .arm()
        .connected_cluster(&w.sandbox.subscription_ids()[0], "arc-rg", "edge-01")
        .expect("created");
    assert_eq!(
        cc["properties"]["agentPublicKeyCertificate"],
        public_key(KEY_A)
    );
    assert_eq!(cc["tags"]["arcplan-stack"], "azure-tests");
    // The connectivity check passed once the simulated agents verified the key.
    assert!(
        matches!(
            step(&report, "arc.connectivity.edge-01"),
            StepStatus::Applied { .. }
        ),
        "{report:#?}"
    );

    let second = w.plan(PlanMode::Normal).await.unwrap();
    assert!(
        !second.has_changes(),
        "{:#?}",
        second
            .changes
            .iter()
            .filter(|c| c.action.is_change())
            .collect::<Vec<_>>()
    );
    let all = w.all_output(&[&first, &second], &[&report], &[]);
    assert!(
        !all.contains(w.sandbox.client_secret()),
        "the client secret leaked"
    );
    assert!(!arcplan_testkit::contains_jwt(&all), "a token leaked");
}

#[tokio::test]
async fn tag_change_updates_and_location_change_replaces() {
    let mut w = world(SandboxOptions::default()).await;
    let first = w.plan(PlanMode::Normal).await.unwrap();
    w.install_agents(KEY_A);
    assert!(w.apply(&first).await.is_success());

    w.reload("eastus", "prod");
    let tags = w.plan(PlanMode::Normal).await.unwrap();
    assert_eq!(
        action(&tags, "arc.connectedCluster.edge-01"),
        Action::Update
    );
    assert_eq!(tags.summary().change, 1, "only the cluster changes");
    let r = w.apply(&tags).await;
    assert!(r.is_success(), "{r:#?}");
    let cc = w
        .sandbox
        .arm()
        .connected_cluster(&w.sandbox.subscription_ids()[0], "arc-rg", "edge-01")
        .unwrap();
    assert_eq!(cc["tags"]["env"], "prod");
    assert!(!w.plan(PlanMode::Normal).await.unwrap().has_changes());

    // Tags added outside arcplan (Azure Policy) are kept, not shown as a change.
    w.sandbox.arm().update_connected_cluster(
        &w.sandbox.subscription_ids()[0],
        "arc-rg",
        "edge-01",
        |c| {
            c["tags"]["costCenter"] = json!("42");
        },
    );
    assert!(!w.plan(PlanMode::Normal).await.unwrap().has_changes());

    w.reload("westeurope", "prod");
    let moved = w.plan(PlanMode::Normal).await.unwrap();
    let c = moved
        .change(&"arc.connectedCluster.edge-01".parse().unwrap())
        .unwrap();
    assert_eq!(c.action, Action::Replace);
    assert_eq!(c.reason.as_ref().unwrap().code, ReasonCode::CannotUpdate);
    assert!(
        c.reason
            .as_ref()
            .unwrap()
            .message
            .contains("location eastus -> westeurope cannot change in place"),
        "{:?}",
        c.reason
    );
    assert!(
        c.reason
            .as_ref()
            .unwrap()
            .message
            .contains("onboarded again")
    );
    assert_eq!(c.replace_paths, vec!["/location".to_owned()]);
}

#[tokio::test]
async fn a_mismatching_key_forces_a_replace_with_the_reason() {
    let w = world(SandboxOptions::default()).await;
    let first = w.plan(PlanMode::Normal).await.unwrap();
    w.install_agents(KEY_A);
    assert!(w.apply(&first).await.is_success());
    w.kube_fake.outputs.lock().unwrap().insert(
        Address::new(arcplan_providers::kinds::ONBOARDING_KEY, "edge-01"),
        json!({"publicKey": public_key(KEY_B)}),
    );
    let p = w.plan(PlanMode::Normal).await.unwrap();
    let c = p
        .change(&"arc.connectedCluster.edge-01".parse().unwrap())
        .unwrap();
    assert_eq!(c.action, Action::Replace);
    assert!(
        c.reason
            .as_ref()
            .unwrap()
            .message
            .contains("does not match"),
        "{:?}",
        c.reason
    );
}

#[tokio::test]
async fn reader_role_fails_the_plan_naming_the_missing_actions() {
    let w = world(SandboxOptions {
        principal_role: PrincipalRole::Reader,
        ..Default::default()
    })
    .await;
    let p = w
        .plan(PlanMode::Normal)
        .await
        .unwrap_or_else(|d| panic!("{d}"));
    assert!(p.has_failed_checks());
    let check = p
        .checks
        .iter()
        .find(|c| c.address.to_string() == "azure.roleCheck.arc-rg")
        .unwrap();
    assert_eq!(check.status, CheckStatus::Fail);
    assert!(check.summary.contains("lacks Microsoft.Resources/subscriptions/resourceGroups/write, Microsoft.Kubernetes/connectedClusters/write"), "{}", check.summary);
    assert!(
        check.summary.contains(&format!(
            "/subscriptions/{}",
            w.sandbox.subscription_ids()[0]
        )),
        "{}",
        check.summary
    );
    assert!(
        check.summary.contains(w.sandbox.principal_object_id()),
        "names the principal: {}",
        check.summary
    );
    let fix = check.fix.as_deref().unwrap();
    assert!(
        fix.contains("\"Owner\"") && fix.contains("az role assignment create"),
        "{fix}"
    );
    let sub_check = p
        .checks
        .iter()
        .find(|c| c.address.to_string() == "azure.roleCheck.subscription")
        .unwrap();
    assert_eq!(
        sub_check.status,
        CheckStatus::Fail,
        "a Reader cannot register providers"
    );
    assert!(
        sub_check
            .summary
            .contains("Microsoft.Kubernetes/register/action"),
        "{}",
        sub_check.summary
    );
    // Nothing was changed, and apply refuses.
    let err = apply(&p, &w.providers, &ApplyOptions::default(), w.events.clone())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("azure.roleCheck.arc-rg"), "{err}");
    assert!(
        w.sandbox
            .arm()
            .resource_group(&w.sandbox.subscription_ids()[0], "arc-rg")
            .is_none()
    );
}

#[tokio::test]
async fn onboarding_role_may_create_but_not_destroy() {
    let w = world(SandboxOptions::default()).await;
    // The platform team made the group; the onboarding identity only connects clusters.
    w.sandbox.arm().put_resource_group(
        &w.sandbox.subscription_ids()[0],
        "arc-rg",
        "eastus",
        json!({"arcplan-stack": "azure-tests"})
            .as_object()
            .unwrap()
            .clone(),
    );
    for ns in [
        "Microsoft.Kubernetes",
        "Microsoft.KubernetesConfiguration",
        "Microsoft.ExtendedLocation",
    ] {
        w.sandbox.arm().set_provider_state(
            &w.sandbox.subscription_ids()[0],
            ns,
            RegistrationState::Registered,
        );
    }
    w.sandbox.arm().set_role(PrincipalRole::ArcOnboarding);
    let (p, warnings) = plan(
        &w.graph,
        &w.providers,
        &w.opts(PlanMode::Normal),
        w.events.clone(),
    )
    .await
    .unwrap_or_else(|d| panic!("{d}"));
    let check = p
        .checks
        .iter()
        .find(|c| c.address.to_string() == "azure.roleCheck.arc-rg")
        .unwrap();
    assert_eq!(check.status, CheckStatus::Pass, "{check:?}");
    // The role may read groups and connected clusters, which is all that reads and prune need;
    // it may not read the resource providers' registration, which each provider says.
    assert!(
        warnings.iter().all(|d| d.code == "registration-unknown"),
        "{warnings}"
    );
    assert_eq!(warnings.iter().count(), 3, "{warnings}");
    w.install_agents(KEY_A);
    let r = w.apply(&p).await;
    assert!(
        matches!(
            step(&r, "arc.connectedCluster.edge-01"),
            StepStatus::Applied { .. }
        ),
        "{r:#?}"
    );

    let destroy = w
        .plan(PlanMode::Destroy)
        .await
        .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        action(&destroy, "arc.connectedCluster.edge-01"),
        Action::Delete
    );
    let check = destroy
        .checks
        .iter()
        .find(|c| c.address.to_string() == "azure.roleCheck.arc-rg")
        .unwrap();
    assert_eq!(check.status, CheckStatus::Fail, "{check:?}");
    assert!(
        check
            .summary
            .contains("Microsoft.Kubernetes/connectedClusters/delete"),
        "{}",
        check.summary
    );
    assert!(
        apply(
            &destroy,
            &w.providers,
            &ApplyOptions::default(),
            w.events.clone()
        )
        .await
        .is_err()
    );
    assert!(
        w.sandbox
            .arm()
            .connected_cluster(&w.sandbox.subscription_ids()[0], "arc-rg", "edge-01")
            .is_some()
    );
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried() {
    let w = world(SandboxOptions::default()).await;
    let first = w.plan(PlanMode::Normal).await.unwrap();
    w.install_agents(KEY_A);
    w.sandbox.faults().throttle_next(3, 1);
    w.sandbox.faults().set_error_rate(0.15);
    let r = w.apply(&first).await;
    assert!(r.is_success(), "{r:#?}");
    w.sandbox.faults().set_error_rate(0.0);
    let stats = &w.azure.arm().stats;
    assert!(
        stats.retries.load(std::sync::atomic::Ordering::Relaxed) >= 3,
        "retried"
    );
    assert!(
        stats.throttled.load(std::sync::atomic::Ordering::Relaxed) >= 1,
        "saw a 429"
    );
    assert!(!w.plan(PlanMode::Normal).await.unwrap().has_changes());
}

#[tokio::test]
async fn a_failed_operation_is_a_clear_error_naming_it() {
    let w = world(SandboxOptions {
        fail_lro_for: vec!["edge-01".into()],
        ..Default::default()
    })
    .await;
    let first = w.plan(PlanMode::Normal).await.unwrap();
    let r = w.apply(&first).await;
    let StepStatus::Failed { diagnostics } = step(&r, "arc.connectedCluster.edge-01") else {
        panic!("{r:#?}")
    };
    let text = diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains("creating connected cluster edge-01 ended Failed"),
        "{text}"
    );
    assert!(text.contains("x-ms-request-id"), "{text}");
    assert_eq!(
        diagnostics[0].address.as_deref(),
        Some("arc.connectedCluster.edge-01")
    );
    assert!(matches!(
        step(&r, "k8s.arcAgents.edge-01"),
        StepStatus::Skipped { .. }
    ));
    assert!(matches!(
        step(&r, "azure.resourceGroup.arc-rg"),
        StepStatus::Applied { .. }
    ));
}

#[tokio::test]
async fn removed_clusters_are_pruned_and_destroy_cleans_up() {
    let w = world(SandboxOptions::default()).await;
    let sub = w.sandbox.subscription_ids()[0].clone();
    let first = w.plan(PlanMode::Normal).await.unwrap();
    w.install_agents(KEY_A);
    assert!(w.apply(&first).await.is_success());
    // A cluster of this stack that the file no longer lists, and one of another stack.
    for (name, stack) in [("old-edge", "azure-tests"), ("foreign", "other")] {
        let body = w
            .sandbox
            .arm()
            .connected_cluster(&sub, "arc-rg", "edge-01")
            .unwrap();
        let mut body = body.clone();
        body["name"] = json!(name);
        body["id"] = json!(format!(
            "/subscriptions/{sub}/resourceGroups/arc-rg/providers/Microsoft.Kubernetes/connectedClusters/{name}"
        ));
        body["tags"] = json!({"arcplan-stack": stack});
        let token = w
            .sandbox
            .mint_token(&w.sandbox.default_claims(Duration::from_secs(600)));
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(w.sandbox.tls().client_config().unwrap())
            .build()
            .unwrap();
        let url = format!(
            "{}subscriptions/{sub}/resourceGroups/arc-rg/providers/Microsoft.Kubernetes/connectedClusters/{name}?api-version=2026-05-01",
            w.sandbox.resource_manager()
        );
        let put = json!({"location": "eastus", "tags": body["tags"], "identity": {"type": "SystemAssigned"}, "properties": {"agentPublicKeyCertificate": public_key(KEY_B), "distribution": "generic", "infrastructure": "generic"}});
        let resp = http
            .put(url)
            .bearer_auth(token)
            .json(&put)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
    }
    let p = w.plan(PlanMode::Normal).await.unwrap();
    let c = p
        .change(&"arc.connectedCluster.old-edge".parse().unwrap())
        .expect("orphan found by the tagged-resource list");
    assert_eq!(c.action, Action::Delete);
    assert_eq!(
        c.reason.as_ref().unwrap().code,
        ReasonCode::DeleteBecauseNoResourceConfig
    );
    assert!(
        p.change(&"arc.connectedCluster.foreign".parse().unwrap())
            .is_none()
    );
    let r = w.apply(&p).await;
    assert!(r.is_success(), "{r:#?}");
    assert!(
        w.sandbox
            .arm()
            .connected_cluster(&sub, "arc-rg", "old-edge")
            .is_none()
    );

    let destroy = w.plan(PlanMode::Destroy).await.unwrap();
    assert_eq!(
        action(&destroy, "arc.connectedCluster.edge-01"),
        Action::Delete
    );
    // The group still holds another stack's cluster, so it stays, and the plan says why.
    assert_eq!(action(&destroy, "azure.resourceGroup.arc-rg"), Action::NoOp);
    let r = w.apply(&destroy).await;
    assert!(r.is_success(), "{r:#?}");
    assert!(
        w.sandbox
            .arm()
            .connected_cluster(&sub, "arc-rg", "edge-01")
            .is_none()
    );
    assert!(
        w.sandbox
            .arm()
            .connected_cluster(&sub, "arc-rg", "foreign")
            .is_some()
    );
    assert_eq!(
        action(&destroy, "azure.resourceProvider.Microsoft.Kubernetes"),
        Action::NoOp,
        "never unregisters"
    );
}

#[tokio::test]
async fn a_no_op_plan_makes_the_minimum_of_requests() {
    let w = world(SandboxOptions::default()).await;
    let first = w.plan(PlanMode::Normal).await.unwrap();
    w.install_agents(KEY_A);
    assert!(w.apply(&first).await.is_success());
    let before = w.sandbox.request_counts();
    let p = w.plan(PlanMode::Normal).await.unwrap();
    assert!(!p.has_changes());
    let after = w.sandbox.request_counts();
    let arm = after.arm - before.arm;
    // subscription, provider list, resource group list, connected cluster list (prune reuses the lists).
    assert_eq!(arm, 4, "ARM requests of a no-op plan");
    assert_eq!(after.entra - before.entra, 0, "the token is cached");
    let mut counts: HashMap<&str, u64> = HashMap::new();
    counts.insert("arm", arm);
    assert!(counts["arm"] <= 4);
}
