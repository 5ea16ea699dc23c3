//! What every Kubernetes kind shares: the settings, one client per (kubeconfig, context), and the
//! onboarding key generator. [`super::KubernetesProvider`] holds one [`KubeCx`] and hands it to
//! each kind's verbs (see [`crate::kind::Kind`]).

use super::KubernetesProviderOptions;
use super::access::{Cluster, ClusterCache, ClusterRef};
use super::key_pool::KeyPool;
use super::kinds::ClusterAccess;
use arcplan_engine::diag::Diagnostic;
use serde_json::Value;
use std::sync::Arc;

/// The Kubernetes kinds' shared context.
pub struct KubeCx {
    opts: KubernetesProviderOptions,
    clusters: ClusterCache,
    keys: KeyPool,
}

impl KubeCx {
    /// A context with these options; clients are made on first use and kept.
    pub fn new(opts: KubernetesProviderOptions) -> Self {
        Self {
            opts,
            clusters: ClusterCache::default(),
            keys: KeyPool::default(),
        }
    }

    /// The settings.
    pub fn options(&self) -> &KubernetesProviderOptions {
        &self.opts
    }

    /// The onboarding key generator.
    pub fn keys(&self) -> &KeyPool {
        &self.keys
    }

    /// The connected cluster a kind's `cluster` attribute names.
    pub async fn cluster(&self, access: &ClusterAccess) -> Result<Arc<Cluster>, Diagnostic> {
        self.connect(&ClusterRef::of(
            access.kubeconfig.as_deref(),
            access.context.as_deref(),
        ))
        .await
    }

    /// The connected cluster of an untyped `cluster` attribute (`{kubeconfig, context}`).
    pub async fn cluster_of(&self, cluster_attrs: &Value) -> Result<Arc<Cluster>, Diagnostic> {
        self.connect(&ClusterRef::from_attrs(cluster_attrs)).await
    }

    async fn connect(&self, r: &ClusterRef) -> Result<Arc<Cluster>, Diagnostic> {
        self.clusters.get(r, &self.opts).await
    }
}
