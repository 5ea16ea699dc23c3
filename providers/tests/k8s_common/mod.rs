//! Shared setup of the Kubernetes provider tests: an in-process sandbox (real HTTPS, CA
//! verified), a desired-state file whose `kubeconfig:` points at the kubeconfig the sandbox
//! wrote, and the engine with the Kubernetes provider plus the fake Azure provider.

#![allow(dead_code)]

use arcplan_config::load_str;
use arcplan_engine::address::{Address, ResourceType as T};
use arcplan_engine::events::{Event, EventSink};
use arcplan_engine::graph::{ResourceGraph, ResourceNode};
use arcplan_engine::plan::{Plan, PlanMode};
use arcplan_engine::planner::{PlanOptions, plan};
use arcplan_engine::provider::*;
use arcplan_engine::testing::FakeProvider;
use arcplan_providers::kubernetes::{KubernetesProvider, KubernetesProviderOptions};
use arcplan_sandbox::{Sandbox, SandboxOptions};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const AZURE_TYPES: &[T] = &[
    arcplan_providers::kinds::SUBSCRIPTION,
    arcplan_providers::kinds::RESOURCE_PROVIDER,
    arcplan_providers::kinds::ROLE_CHECK,
    arcplan_providers::kinds::RESOURCE_GROUP,
    arcplan_providers::kinds::CONNECTED_CLUSTER,
    arcplan_providers::kinds::CONNECTIVITY,
];

/// Records every event.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<Event>>);

impl EventSink for Recorder {
    fn emit(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

impl Recorder {
    pub fn json(&self) -> String {
        serde_json::to_string(&*self.0.lock().unwrap()).unwrap()
    }
}

/// The fake Azure provider, wrapped to record what the cluster held when ARM was "PUT".
pub struct Azure {
    pub fake: Arc<FakeProvider>,
    pub kube: arcplan_sandbox::KubeApi,
    /// For each connected-cluster apply: (Secret present, agentPublicKeyCertificate).
    pub puts: Mutex<Vec<(bool, Value)>>,
}

#[async_trait]
impl Provider for Azure {
    fn resource_types(&self) -> Vec<T> {
        self.fake.resource_types()
    }
    async fn read(&self, req: ReadRequest) -> ReadResponse {
        self.fake.read(req).await
    }
    async fn plan(&self, req: PlanRequest) -> PlanResponse {
        self.fake.plan(req).await
    }
    async fn apply(&self, req: ApplyRequest) -> ApplyResponse {
        if req.change.address.rtype == arcplan_providers::kinds::CONNECTED_CLUSTER
            && req.change.action != arcplan_engine::plan::Action::Delete
        {
            let present = self
                .kube
                .get(
                    "v1",
                    "Secret",
                    Some("azure-arc"),
                    "azure-arc-connect-privatekey",
                )
                .is_some();
            self.puts
                .lock()
                .unwrap()
                .push((present, req.desired["agentPublicKeyCertificate"].clone()));
        }
        self.fake.apply(req).await
    }
    async fn check(&self, req: CheckRequest) -> CheckResponse {
        self.fake.check(req).await
    }
}

pub struct Env {
    pub sandbox: Sandbox,
    pub dir: PathBuf,
    pub graph: ResourceGraph,
    pub provider: Arc<KubernetesProvider>,
    pub azure: Arc<Azure>,
    pub providers: Providers,
    pub events: Arc<Recorder>,
}

pub const SUB: &str = arcplan_sandbox::DEFAULT_SUBSCRIPTION_ID;

pub fn config_text(agents: &str) -> String {
    format!(
        "apiVersion: arcplan/v1\nstack: k8stest\nazure:\n  subscription: {SUB}\n  tenant: {}\nresourceGroups:\n  - name: rg1\n    location: eastus\nclusters:\n  - name: c1\n    resourceGroup: rg1\n    kubeconfig: kubeconfig\n    context: sandbox\n    agents:\n{agents}",
        arcplan_sandbox::DEFAULT_TENANT_ID
    )
}

pub const MANIFESTS: &str = "      installer: manifests\n      timeout: 60s\n";

/// The graph of `text`, with the onboarding key at `key_bits` bits (2048 keeps debug-build
/// tests fast; the 4096-bit default is covered by the key module's unit test).
pub fn graph_of(text: &str, key_bits: u64) -> ResourceGraph {
    let loaded = load_str(text, "arcplan.yaml").unwrap_or_else(|d| panic!("config loads: {d:?}"));
    let g = arcplan_providers::kinds::lower(&loaded.config).expect("graph builds");
    let mut out = ResourceGraph::new();
    for n in g.nodes() {
        let mut desired = n.desired.clone();
        if n.address.rtype == arcplan_providers::kinds::ONBOARDING_KEY {
            desired["keyBits"] = json!(key_bits);
        }
        out.add(ResourceNode {
            desired,
            ..n.clone()
        })
        .unwrap();
    }
    for (dependency, dependent, kind) in g.edges() {
        out.depend(dependent, dependency, kind).unwrap();
    }
    out
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "arcplan-k8s-{tag}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn start(tag: &str, agents: &str) -> Env {
    let sandbox = Sandbox::start(SandboxOptions {
        deployment_ready_delay: Duration::from_millis(100),
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts");
    let dir = temp_dir(tag);
    std::fs::write(dir.join("kubeconfig"), sandbox.kubeconfig_yaml()).unwrap();
    let text = config_text(agents);
    std::fs::write(dir.join("arcplan.yaml"), &text).unwrap();
    let graph = graph_of(&text, 2048);
    let provider = Arc::new(KubernetesProvider::new(
        KubernetesProviderOptions::new(&dir)
            .with_env(|_| None)
            .with_poll_interval(Duration::from_millis(100)),
    ));
    let mut fake = FakeProvider::new(AZURE_TYPES);
    fake.replace_keys = vec!["agentPublicKeyCertificate".into()];
    fake.live.lock().unwrap().insert(
        Address::new(arcplan_providers::kinds::SUBSCRIPTION, SUB),
        json!({"subscriptionId": SUB, "state": "Enabled"}),
    );
    let azure = Arc::new(Azure {
        fake: Arc::new(fake),
        kube: sandbox.kube().clone(),
        puts: Mutex::new(Vec::new()),
    });
    let mut providers = Providers::new();
    providers.register(azure.clone());
    providers.register(provider.clone());
    Env {
        sandbox,
        dir,
        graph,
        provider,
        azure,
        providers,
        events: Arc::new(Recorder::default()),
    }
}

impl Env {
    pub async fn plan(&self, mode: PlanMode) -> Result<Plan, arcplan_engine::diag::Diagnostics> {
        let opts = PlanOptions {
            mode,
            stack: "k8stest".into(),
            config_digest: "test".into(),
            ..Default::default()
        };
        plan(&self.graph, &self.providers, &opts, self.events.clone())
            .await
            .map(|(p, _)| p)
    }

    pub async fn apply(&self, plan: &Plan) -> arcplan_engine::executor::ApplyReport {
        let report = arcplan_engine::executor::apply(
            plan,
            &self.providers,
            &arcplan_engine::executor::ApplyOptions::default(),
            self.events.clone(),
        )
        .await
        .expect("apply runs");
        assert!(report.is_success(), "apply failed: {report:#?}");
        report
    }

    pub fn secret_pem(&self) -> Option<String> {
        use base64::Engine as _;
        let s = self.sandbox.kube().get(
            "v1",
            "Secret",
            Some("azure-arc"),
            "azure-arc-connect-privatekey",
        )?;
        let b64 = s.pointer("/data/privateKey")?.as_str()?;
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).ok()?).ok()
    }

    pub async fn stop(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        self.sandbox.shutdown().await;
    }
}

pub fn addr(s: &str) -> Address {
    s.parse().unwrap()
}
