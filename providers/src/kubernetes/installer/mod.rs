//! How the Arc agents get into a cluster: one [`Installer`] trait (`read`, `diff`, `install`,
//! `remove`), implemented by [`manifests::Manifests`] (server-side apply of an object set, prune
//! by ownership label) and [`helm::Helm`] (`helm upgrade --install` of Microsoft's chart).
//!
//! The `k8s.arcAgents` kind picks the installer once, from the `installer` attribute (the
//! configuration's [`arcplan_config::Installer`], validated by the loader), with [`of`], and
//! calls the trait; what the kind does around it (the ownership record, orphan and replace
//! rules, the readiness wait, the applied digest, namespace removal) is the same for both.

pub mod helm;
pub mod manifests;

use super::DEFAULT_AGENT_VERSION;
use super::access::Cluster;
use super::context::KubeCx;
use super::kinds::arc_agents::Attributes;
use super::readiness::Readiness;
use arcplan_engine::diag::{Diagnostic, Diagnostics};
use async_trait::async_trait;
use serde_json::{Map, Value};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The cluster and the attributes an installer works on.
pub struct Target<'a> {
    /// The shared context (settings, helm binary, base directory).
    pub cx: &'a KubeCx,
    /// The connected cluster.
    pub cluster: &'a Cluster,
    /// The `k8s.arcAgents` attributes.
    pub attrs: &'a Attributes,
}

impl Target<'_> {
    /// The configured agent version, if one is named.
    pub fn version(&self) -> Option<&str> {
        self.attrs.version.as_deref().filter(|s| !s.is_empty())
    }

    /// The agent version to install: the configured one, else arcplan's default.
    pub fn agent_version(&self) -> &str {
        self.version().unwrap_or(DEFAULT_AGENT_VERSION)
    }
}

/// What an install or a removal runs with.
pub struct Step<'a> {
    /// The `timeout` attribute.
    pub timeout: Duration,
    /// Stops the step (Helm is killed, waits end).
    pub cancel: &'a CancellationToken,
    /// Reports progress.
    pub say: &'a (dyn Fn(String) + Send + Sync),
}

/// What an installer finds in the cluster.
#[derive(Debug, Clone)]
pub struct Live {
    /// Anything of the agents exists (otherwise the resource is absent).
    pub exists: bool,
    /// The agents count as installed (an empty namespace does not).
    pub installed: bool,
    /// The installer's own part of the state (its objects, or its release).
    pub state: Map<String, Value>,
    /// The agents' readiness.
    pub readiness: Readiness,
    /// The version the installer itself records (a Helm release's chart version), when the
    /// ownership ConfigMap does not say (`AZURE_ARC_AGENT_VERSION`).
    pub version: Option<String>,
}

/// What differs between the desired attributes and the live state.
#[derive(Debug, Clone)]
pub struct Diff {
    /// One line per object or field that differs (empty: nothing to do).
    pub changes: Vec<String>,
    /// The planned state.
    pub after: Value,
}

/// One way of installing the agents.
#[async_trait]
pub trait Installer: Send + Sync {
    /// What the installer needs on this machine before it can change anything (nothing, or a
    /// Helm binary).
    fn preflight(&self, _cx: &KubeCx) -> Diagnostics {
        Diagnostics::new()
    }

    /// What this installer leaves in a cluster that is never contacted again, as
    /// `Kind namespace/name`, worked out from the attributes alone (no request to the cluster).
    async fn left_behind(&self, cx: &KubeCx, attrs: &Attributes) -> Vec<String>;

    /// Reads what is installed; `recorded` says the ownership record exists.
    async fn read(&self, t: &Target<'_>, recorded: bool) -> Result<Live, Diagnostic>;

    /// What differs from `prior` (the state [`Installer::read`] made); `None` for a first
    /// install, whose planned state is a summary a reviewer can read.
    async fn diff(&self, t: &Target<'_>, prior: Option<&Value>) -> Result<Diff, Diagnostic>;

    /// Installs or updates the agents; returns the agent Deployments to wait for (`None`: every
    /// Deployment in `azure-arc`).
    async fn install(
        &self,
        t: &Target<'_>,
        step: &Step<'_>,
    ) -> Result<Option<Vec<String>>, Diagnostic>;

    /// Removes what this installer installed. With `everything` (destroy) the namespaces go
    /// next, so objects inside `azure-arc` may be left to the namespace deletion.
    async fn remove(
        &self,
        t: &Target<'_>,
        step: &Step<'_>,
        everything: bool,
    ) -> Result<(), Diagnostic>;
}

/// The installer for the configured kind.
pub fn of(kind: arcplan_config::Installer) -> &'static dyn Installer {
    match kind {
        arcplan_config::Installer::Helm => &helm::Helm,
        arcplan_config::Installer::Manifests => &manifests::Manifests,
    }
}
