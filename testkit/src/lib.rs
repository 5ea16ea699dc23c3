//! Test support shared by arcplan's test crates (the providers' Kubernetes tests, the
//! conformance suite against a real kube-apiserver): one copy of the harness instead of one
//! per test crate.
//!
//! - [`Recorder`]: an event sink that keeps every event.
//! - [`FakeAzure`]: the engine's scripted fake serving the Azure types, recording whether the
//!   onboarding key's Secret was in the cluster when the connected cluster was "PUT".
//! - [`graph_with_key_bits`]: the graph of a desired-state text, with fast onboarding keys.
//! - [`Harness`]: plan, apply and converge a graph over providers, as `arcplan` runs them.
//! - [`contains_jwt`]: the secret scans' test for a token in what arcplan printed.

use arcplan_config::load_str;
use arcplan_engine::address::{Address, ResourceType as T};
use arcplan_engine::diag::Diagnostics;
use arcplan_engine::events::{Event, EventSink};
use arcplan_engine::executor::{ApplyOptions, ApplyReport, apply};
use arcplan_engine::graph::{ResourceGraph, ResourceNode};
use arcplan_engine::plan::{Action, Plan, PlanMode};
use arcplan_engine::planner::{PlanOptions, plan};
use arcplan_engine::provider::*;
use arcplan_engine::testing::FakeProvider;
use arcplan_providers::kinds;
use async_trait::async_trait;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// The Azure-side types, which [`FakeAzure`] serves.
pub const AZURE_TYPES: &[T] = &[
    kinds::SUBSCRIPTION,
    kinds::RESOURCE_PROVIDER,
    kinds::ROLE_CHECK,
    kinds::RESOURCE_GROUP,
    kinds::CONNECTED_CLUSTER,
    kinds::CONNECTIVITY,
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
    /// Every event, as one JSON array.
    pub fn json(&self) -> String {
        serde_json::to_string(&*self.0.lock().unwrap()).unwrap()
    }

    /// The messages of the apply progress events, in order.
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

/// Whether the onboarding key's Secret is in the cluster now.
pub type SecretProbe = Box<dyn Fn() -> BoxFuture<'static, bool> + Send + Sync>;

/// The fake Azure provider, wrapped to record what the cluster held when ARM was "PUT".
pub struct FakeAzure {
    /// The scripted fake (live state, calls).
    pub fake: Arc<FakeProvider>,
    probe: SecretProbe,
    /// For each connected-cluster create or update: (Secret present, agentPublicKeyCertificate).
    pub puts: Mutex<Vec<(bool, Value)>>,
}

impl FakeAzure {
    /// The fake with subscription `sub` enabled, replacing a connected cluster whose public key
    /// changes (as ARM does), and `probe` to look for the key's Secret.
    pub fn new(sub: &str, probe: SecretProbe) -> Arc<Self> {
        let mut fake = FakeProvider::new(AZURE_TYPES);
        fake.replace_keys = vec!["agentPublicKeyCertificate".into()];
        fake.live.lock().unwrap().insert(
            Address::new(kinds::SUBSCRIPTION, sub),
            json!({"subscriptionId": sub, "state": "Enabled"}),
        );
        Arc::new(FakeAzure {
            fake: Arc::new(fake),
            probe,
            puts: Mutex::new(Vec::new()),
        })
    }
}

#[async_trait]
impl Provider for FakeAzure {
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
        if req.change.address.rtype == kinds::CONNECTED_CLUSTER
            && req.change.action != Action::Delete
        {
            let present = (self.probe)().await;
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

/// The graph of `text`, with the onboarding keys at `key_bits` bits (2048 keeps debug-build
/// tests fast; the 4096-bit default is covered by the key module's unit test).
pub fn graph_with_key_bits(text: &str, key_bits: u64) -> ResourceGraph {
    let loaded = load_str(text, "arcplan.yaml").unwrap_or_else(|d| panic!("config loads: {d:?}"));
    let g = kinds::lower(&loaded.config).expect("graph builds");
    let mut out = ResourceGraph::new();
    for n in g.nodes() {
        let mut desired = n.desired.clone();
        if n.address.rtype == kinds::ONBOARDING_KEY {
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

/// A graph over providers, planned and applied as `arcplan` would, recording the events.
pub struct Harness {
    /// The graph.
    pub graph: ResourceGraph,
    /// The providers.
    pub providers: Providers,
    /// Every event of every plan and apply.
    pub events: Arc<Recorder>,
    /// The stack name the plans use.
    pub stack: String,
}

impl Harness {
    /// The harness of `graph` over `providers`, for stack `stack`.
    pub fn new(graph: ResourceGraph, providers: Providers, stack: &str) -> Self {
        Harness {
            graph,
            providers,
            events: Arc::new(Recorder::default()),
            stack: stack.to_owned(),
        }
    }

    /// Plans in `mode`.
    pub async fn plan(&self, mode: PlanMode) -> Result<Plan, Diagnostics> {
        let opts = PlanOptions {
            mode,
            stack: self.stack.clone(),
            config_digest: "test".into(),
            ..Default::default()
        };
        plan(&self.graph, &self.providers, &opts, self.events.clone())
            .await
            .map(|(p, _)| p)
    }

    /// Applies `plan`, which must succeed.
    pub async fn apply(&self, plan: &Plan) -> ApplyReport {
        let report = apply(
            plan,
            &self.providers,
            &ApplyOptions::default(),
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

/// An address from its text.
pub fn addr(s: &str) -> Address {
    s.parse().unwrap()
}

/// The action planned for `a`.
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

/// Whether `text` holds a JWT: `eyJ…` (a base64url JSON header), a dot, `eyJ…` (its JSON
/// payload) and a dot. Random base64 (a public key a plan shows) may hold `eyJ` by chance,
/// never this.
pub fn contains_jwt(text: &str) -> bool {
    let segment = |s: &str| -> Option<usize> {
        let rest = s.strip_prefix("eyJ")?;
        let n = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            .count();
        (n >= 4 && rest.as_bytes().get(n) == Some(&b'.')).then_some(3 + n + 1)
    };
    text.match_indices("eyJ")
        .any(|(i, _)| segment(&text[i..]).is_some_and(|len| segment(&text[i + len..]).is_some()))
}

#[cfg(test)]
mod tests {
    use super::contains_jwt;

    #[test]
    fn a_jwt_is_told_from_base64_that_holds_eyj() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
        assert!(contains_jwt(&format!("token {jwt} leaked")));
        assert!(!contains_jwt(
            "MIIBCgKCAQEAeyJ+q1/Zx0eyJ7 and eyJ. and eyJab.c and eyJabcdef.x"
        ));
    }
}
