//! Shared setup of the Kubernetes provider tests: an in-process sandbox (real HTTPS, CA
//! verified), a desired-state file whose `kubeconfig:` points at the kubeconfig the sandbox
//! wrote, and the engine with the Kubernetes provider plus the fake Azure provider (the
//! harness itself is `arcplan-testkit`'s).

#![allow(dead_code)]

use arcplan_engine::provider::*;
use arcplan_providers::kubernetes::{KubernetesProvider, KubernetesProviderOptions};
use arcplan_sandbox::{Sandbox, SandboxOptions};
use arcplan_testkit::{FakeAzure, Harness, graph_with_key_bits};
pub use arcplan_testkit::{FakeAzure as Azure, addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub struct Env {
    pub sandbox: Sandbox,
    pub dir: PathBuf,
    pub provider: Arc<KubernetesProvider>,
    pub azure: Arc<Azure>,
    /// The graph, the providers, the events; plan and apply.
    pub h: Harness,
}

impl std::ops::Deref for Env {
    type Target = Harness;
    fn deref(&self) -> &Harness {
        &self.h
    }
}

impl std::ops::DerefMut for Env {
    fn deref_mut(&mut self) -> &mut Harness {
        &mut self.h
    }
}

pub const SUB: &str = arcplan_sandbox::DEFAULT_SUBSCRIPTION_ID;

pub fn config_text(agents: &str) -> String {
    format!(
        "apiVersion: arcplan/v1\nstack: k8stest\nazure:\n  subscription: {SUB}\n  tenant: {}\nresourceGroups:\n  - name: rg1\n    location: eastus\nclusters:\n  - name: c1\n    resourceGroup: rg1\n    kubeconfig: kubeconfig\n    context: sandbox\n    agents:\n{agents}",
        arcplan_sandbox::DEFAULT_TENANT_ID
    )
}

pub const MANIFESTS: &str = "      installer: manifests\n      timeout: 60s\n";

/// The graph of `text`, with the onboarding key at `key_bits` bits.
pub fn graph_of(text: &str, key_bits: u64) -> arcplan_engine::graph::ResourceGraph {
    graph_with_key_bits(text, key_bits)
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
    let kube = sandbox.kube().clone();
    let azure = FakeAzure::new(
        SUB,
        Box::new(move || {
            let present = kube
                .get(
                    "v1",
                    "Secret",
                    Some("azure-arc"),
                    "azure-arc-connect-privatekey",
                )
                .is_some();
            Box::pin(async move { present })
        }),
    );
    let mut providers = Providers::new();
    providers.register(azure.clone());
    providers.register(provider.clone());
    Env {
        sandbox,
        dir,
        provider,
        azure,
        h: Harness::new(graph, providers, "k8stest"),
    }
}

impl Env {
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
