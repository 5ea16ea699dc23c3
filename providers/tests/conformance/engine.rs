//! The engine with the Kubernetes provider (plus the fake Azure provider) pointed at a
//! [`Target`]'s kubeconfig, as `arcplan plan`/`apply` would run them (the harness itself is
//! `arcplan-testkit`'s).

#![allow(dead_code)]

use super::target::Target;
use arcplan_engine::provider::*;
use arcplan_providers::kubernetes::{KubernetesProvider, KubernetesProviderOptions};
use arcplan_testkit::{FakeAzure, Harness, graph_with_key_bits};
pub use arcplan_testkit::{FakeAzure as Azure, action, addr, changes};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use std::sync::Arc;
use std::time::Duration;

pub const SUB: &str = arcplan_sandbox::DEFAULT_SUBSCRIPTION_ID;
pub const TENANT: &str = arcplan_sandbox::DEFAULT_TENANT_ID;
pub const KEY: &str = "k8s.onboardingKey.c1";
pub const AGENTS: &str = "k8s.arcAgents.c1";
pub const CC: &str = "arc.connectedCluster.c1";

pub struct Engine {
    pub provider: Arc<KubernetesProvider>,
    pub azure: Arc<Azure>,
    /// The graph, the providers, the events; plan, apply, converge.
    pub h: Harness,
}

impl std::ops::Deref for Engine {
    type Target = Harness;
    fn deref(&self) -> &Harness {
        &self.h
    }
}

/// The desired-state file: one cluster `c1` reached through context `context` of the
/// target's kubeconfig, with `agents` as its agents block.
pub fn config_text(context: &str, agents: &str) -> String {
    format!(
        "apiVersion: arcplan/v1\nstack: conformance\nazure:\n  subscription: {SUB}\n  tenant: {TENANT}\nresourceGroups:\n  - name: rg1\n    location: eastus\nclusters:\n  - name: c1\n    resourceGroup: rg1\n    kubeconfig: kubeconfig\n    context: {context}\n    agents:\n{agents}"
    )
}

pub const MANIFESTS: &str = "      installer: manifests\n      timeout: 90s\n";

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
        let secrets: Api<Secret> = Api::namespaced(target.admin.clone(), "azure-arc");
        let azure = FakeAzure::new(
            SUB,
            Box::new(move || {
                let secrets = secrets.clone();
                Box::pin(async move {
                    matches!(
                        secrets.get_opt("azure-arc-connect-privatekey").await,
                        Ok(Some(_))
                    )
                })
            }),
        );
        let mut providers = Providers::new();
        providers.register(azure.clone());
        providers.register(provider.clone());
        Engine {
            provider,
            azure,
            h: Harness::new(graph_with_key_bits(&text, 2048), providers, "conformance"),
        }
    }
}
