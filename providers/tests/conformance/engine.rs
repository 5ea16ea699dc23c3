//! The engine with the Kubernetes provider (plus the fake Azure provider) pointed at a
//! [`Target`]'s kubeconfig, as `arcplan plan`/`apply` would run them.

#![allow(dead_code)]

use super::target::Target;
use arcplan_config::load_str;
use arcplan_engine::address::{Address, ResourceType as T};
use arcplan_engine::events::{Event, EventSink};
use arcplan_engine::graph::{ResourceGraph, ResourceNode};
use arcplan_engine::plan::{Action, Plan, PlanMode};
use arcplan_engine::planner::{PlanOptions, plan};
use arcplan_engine::provider::*;
use arcplan_engine::testing::FakeProvider;
use arcplan_providers::kubernetes::{KubernetesProvider, KubernetesProviderOptions};
use async_trait::async_trait;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const SUB: &str = arcplan_sandbox::DEFAULT_SUBSCRIPTION_ID;
pub const TENANT: &str = arcplan_sandbox::DEFAULT_TENANT_ID;
pub const KEY: &str = "k8s.onboardingKey.c1";
pub const AGENTS: &str = "k8s.arcAgents.c1";
pub const CC: &str = "arc.connectedCluster.c1";

const AZURE_TYPES: &[T] = &[
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
    pub fn progress(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::ApplyProgress { message, .. } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }
}

/// The fake Azure provider, recording whether the key Secret was in the cluster (read through
/// the API) when the connected cluster was "PUT".
pub struct Azure {
    fake: Arc<FakeProvider>,
    secrets: Api<Secret>,
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
            && req.change.action != Action::Delete
        {
            let present = matches!(
                self.secrets.get_opt("azure-arc-connect-privatekey").await,
                Ok(Some(_))
            );
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

pub struct Engine {
    pub graph: ResourceGraph,
    pub provider: Arc<KubernetesProvider>,
    pub azure: Arc<Azure>,
    providers: Providers,
    pub events: Arc<Recorder>,
}

/// The desired-state file: one cluster `c1` reached through context `context` of the
/// target's kubeconfig, with `agents` as its agents block.
pub fn config_text(context: &str, agents: &str) -> String {
    format!(
        "apiVersion: arcplan/v1\nstack: conformance\nazure:\n  subscription: {SUB}\n  tenant: {TENANT}\nresourceGroups:\n  - name: rg1\n    location: eastus\nclusters:\n  - name: c1\n    resourceGroup: rg1\n    kubeconfig: kubeconfig\n    context: {context}\n    agents:\n{agents}"
    )
}

pub const MANIFESTS: &str = "      installer: manifests\n      timeout: 90s\n";

/// The graph of `text` with 2048-bit onboarding keys (fast in debug builds).
fn graph_of(text: &str) -> ResourceGraph {
    let loaded = load_str(text, "arcplan.yaml").unwrap_or_else(|d| panic!("config loads: {d:?}"));
    let g = arcplan_providers::kinds::lower(&loaded.config).expect("graph builds");
    let mut out = ResourceGraph::new();
    for n in g.nodes() {
        let mut desired = n.desired.clone();
        if n.address.rtype == arcplan_providers::kinds::ONBOARDING_KEY {
            desired["keyBits"] = json!(2048);
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

impl Engine {
    /// The engine for `target` with `agents`, through context `context` (`admin`/`norights`).
    pub fn new(target: &Target, context: &str, agents: &str) -> Engine {
        let text = config_text(context, agents);
        std::fs::write(target.dir.join("arcplan.yaml"), &text).unwrap();
        let provider = Arc::new(KubernetesProvider::new(
            KubernetesProviderOptions::new(&target.dir)
                .with_env(|_| None)
                .with_lease_duration(Duration::from_secs(15))
                .with_poll_interval(Duration::from_millis(200)),
        ));
        let mut fake = FakeProvider::new(AZURE_TYPES);
        fake.replace_keys = vec!["agentPublicKeyCertificate".into()];
        fake.live.lock().unwrap().insert(
            Address::new(arcplan_providers::kinds::SUBSCRIPTION, SUB),
            json!({"subscriptionId": SUB, "state": "Enabled"}),
        );
        let azure = Arc::new(Azure {
            fake: Arc::new(fake),
            secrets: Api::namespaced(target.admin.clone(), "azure-arc"),
            puts: Mutex::new(Vec::new()),
        });
        let mut providers = Providers::new();
        providers.register(azure.clone());
        providers.register(provider.clone());
        Engine {
            graph: graph_of(&text),
            provider,
            azure,
            providers,
            events: Arc::new(Recorder::default()),
        }
    }

    pub async fn plan(&self, mode: PlanMode) -> Result<Plan, arcplan_engine::diag::Diagnostics> {
        let opts = PlanOptions {
            mode,
            stack: "conformance".into(),
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

    /// Plans and applies; returns the plan.
    pub async fn converge(&self) -> Plan {
        let p = self.plan(PlanMode::Normal).await.expect("plan");
        self.apply(&p).await;
        p
    }
}

pub fn addr(s: &str) -> Address {
    s.parse().unwrap()
}

pub fn action(plan: &Plan, a: &str) -> Action {
    plan.change(&addr(a))
        .unwrap_or_else(|| panic!("{a} not in the plan"))
        .action
}

/// The changes of a plan that are not no-ops, for assertion messages.
pub fn changes(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .filter(|c| c.action.is_change())
        .map(|c| format!("{} {:?}: {:?}", c.address, c.action, c.reason))
        .collect()
}
