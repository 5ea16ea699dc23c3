//! The types of a cluster's `fluxConfigurations` (Flux v2 GitOps, as
//! `az k8s-configuration flux create` makes them).

use super::SecretRef;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A Flux configuration: one source and the kustomizations Flux applies from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FluxConfiguration {
    /// The configuration's resource name (unique per cluster), like `cluster-config`.
    pub name: String,
    /// The namespace the Flux source and kustomizations are created in (the service's
    /// default: `default`). Changing it replaces the configuration.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// `cluster` (the kustomizations may apply cluster-wide) or `namespace` (only into
    /// `namespace`). Changing it replaces the configuration.
    #[serde(default)]
    pub scope: FluxScope,
    /// The source kind: `GitRepository` (with `gitRepository`), `Bucket` (an S3-compatible
    /// bucket, with `bucket`) or `OCIRepository` (an OCI artifact, with `ociRepository`).
    /// Changing it replaces the configuration.
    #[serde(default)]
    pub source_kind: FluxSourceKind,
    /// The Git repository (for `sourceKind: GitRepository`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_repository: Option<GitRepository>,
    /// The bucket (for `sourceKind: Bucket`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<Bucket>,
    /// The OCI repository (for `sourceKind: OCIRepository`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci_repository: Option<OciRepository>,
    /// The kustomizations, by name (at least one).
    #[serde(default)]
    pub kustomizations: BTreeMap<String, Kustomization>,
    /// Stop reconciling (the configuration stays).
    #[serde(default)]
    pub suspend: bool,
    /// Secrets of the source (`httpsKey`, `sshPrivateKey` for Git, `bucketSecretKey` for a
    /// bucket), each from an environment variable
    /// or a file (never written in this file, never shown: the plan shows a digest of them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configuration_protected_settings: BTreeMap<String, SecretRef>,
}

/// Where a Flux configuration's kustomizations may apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FluxScope {
    /// Anywhere in the cluster.
    #[default]
    Cluster,
    /// Only in the configuration's namespace.
    Namespace,
}

/// A Flux configuration's source kind, as ARM spells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum FluxSourceKind {
    /// A Git repository (`gitRepository`).
    #[default]
    GitRepository,
    /// An S3-compatible bucket (`bucket`).
    Bucket,
    /// An OCI artifact in a registry (`ociRepository`).
    #[serde(rename = "OCIRepository")]
    OciRepository,
}

/// The OCI repository of a Flux configuration (public, or reachable with the cluster's own
/// credentials: arcplan sets no OCI credentials).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OciRepository {
    /// The repository URL, `oci://registry/path`.
    pub url: String,
    /// A tag to pull (the default when none of `tag`, `semver` and `digest` is given:
    /// `latest`, as Flux defaults it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// A semver range of tags to follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,
    /// An image digest to pull (`sha256:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Reach the registry over plain HTTP (default false).
    #[serde(default)]
    pub insecure: bool,
    /// How often the repository is fetched (a duration; the service's default: 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_interval: Option<String>,
    /// The timeout of a fetch (a duration; the service's default: 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// The S3-compatible bucket of a Flux configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Bucket {
    /// The endpoint URL, like `https://s3.amazonaws.com` or `https://minio.example.com`.
    pub url: String,
    /// The bucket's name.
    pub bucket_name: String,
    /// Reach the endpoint over plain HTTP (default false; arcplan always sends it, so the
    /// service's own default, true, never applies).
    #[serde(default)]
    pub insecure: bool,
    /// The access key id (not a secret; its secret key: `configurationProtectedSettings.bucketSecretKey`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    /// How often the bucket is fetched (a duration; the service's default: 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_interval: Option<String>,
    /// The timeout of a fetch (a duration; the service's default: 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// The Git repository of a Flux configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitRepository {
    /// The repository URL: `https://`, `http://`, `ssh://` or `git@host:path`.
    pub url: String,
    /// The branch to follow (the default when none of `branch`, `tag`, `semver` and `commit`
    /// is given: `main`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// A tag to check out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// A semver range of tags to follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,
    /// A commit to check out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// How often the repository is fetched (a duration like `10m`; the service's default: 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_interval: Option<String>,
    /// The timeout of a fetch (a duration; the service's default: 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// The user of HTTPS authentication (its key: `configurationProtectedSettings.httpsKey`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_user: Option<String>,
    /// The SSH known hosts of the repository's host, as `known_hosts` lines (not a secret;
    /// arcplan sends them base64-encoded, as the service takes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_known_hosts: Option<String>,
}

/// A Flux kustomization: a path of the source Flux applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Kustomization {
    /// The path in the source (default: the root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Kustomizations of the same configuration that must be ready first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Delete what the kustomization applied once it is gone from the source.
    #[serde(default)]
    pub prune: bool,
    /// Recreate resources that cannot be updated in place.
    #[serde(default)]
    pub force: bool,
    /// Wait for what it applied to be ready.
    #[serde(default = "yes")]
    pub wait: bool,
    /// How often it is reconciled (a duration; the service's default: 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_interval: Option<String>,
    /// The timeout of a reconciliation (a duration; the service's default: 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// The wait before retrying a failed reconciliation (a duration; default: `syncInterval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_interval: Option<String>,
}

fn default_namespace() -> String {
    super::conventions::FLUX_DEFAULT_NAMESPACE.to_owned()
}

fn yes() -> bool {
    true
}
