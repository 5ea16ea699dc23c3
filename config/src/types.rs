//! The typed desired-state model (`apiVersion: arcplan/v1`).
//!
//! These types are the single source of truth for the file format: the JSON Schema in
//! `schemas/arcplan.schema.json` is generated from them, and the loader validates documents
//! against that schema before deserialising them. Keys are camelCase and unknown keys are
//! rejected everywhere.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A whole desired-state document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "arcplan desired state")]
pub struct Config {
    /// The format version. Only `arcplan/v1` exists.
    pub api_version: ApiVersion,
    /// The stack name: ARM resources carry the tag `arcplan-stack=<stack>`, and prune acts only
    /// on resources of this stack.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"))]
    pub stack: String,
    /// Where and as whom arcplan talks to Azure.
    pub azure: Azure,
    /// Resource provider namespaces to register in the subscription.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_providers: Vec<String>,
    /// Access the credential must hold before anything changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
    /// Resource groups to create (or, with `existing: true`, that must already exist).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_groups: Vec<ResourceGroup>,
    /// Fields every cluster gets unless it sets them itself (maps merge key by key; lists and
    /// values are replaced): any field of `clusters[]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_defaults: Option<BTreeMap<String, serde_json::Value>>,
    /// Clusters generated from an inventory file or from a kubeconfig's contexts, appended to
    /// `clusters` in order (`arcplan validate --expand` lists them with where each came from).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_sets: Vec<ClusterSet>,
    /// Kubernetes clusters to connect to Azure Arc.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<Cluster>,
    /// Custom locations (`Microsoft.ExtendedLocation/customLocations`): a namespace of a
    /// connected cluster that Azure services deploy into, through cluster extensions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_locations: Vec<CustomLocation>,
}

/// A set of clusters generated from an inventory: a file, or the contexts of a kubeconfig.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSet {
    /// An inventory file, relative to this file: `.csv` (a header row of cluster field names,
    /// dotted for nested ones: `name`, `resourceGroup`, `location`, `context`, `kubeconfig`,
    /// `tags.<key>`, `agents.version`, ...; one row per cluster; empty cells are left out) or
    /// YAML (a list of cluster entries, or a mapping with `clusters:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<String>,
    /// A kubeconfig file (relative to this file, or `~/...`) whose contexts matching
    /// `contexts` each become a cluster named after its context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<String>,
    /// The pattern of the contexts to take from `kubeconfig` (`*` any characters, `?` one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contexts: Option<String>,
    /// Cluster fields for this set's clusters, over `clusterDefaults`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<BTreeMap<String, serde_json::Value>>,
}

/// A custom location, as `az customlocation create` makes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomLocation {
    /// The resource name.
    pub name: String,
    /// The resource group (declared in `resourceGroups`).
    pub resource_group: String,
    /// The subscription (a GUID) it is in: default, the subscription of the one declared
    /// resource group of that name, else `azure.subscription`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    /// The region; defaults to the host cluster's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The host: a cluster of this file (`clusters[].name`). Changing it replaces the location.
    pub cluster: String,
    /// The namespace created in the cluster for it. Changing it replaces the location.
    pub namespace: String,
    /// Extensions of the host cluster (`clusters[].extensions[].name`) whose services the
    /// location offers (at least one).
    pub extensions: Vec<String>,
    /// The display name (default: the name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Tags to set (arcplan adds `arcplan-stack`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// The only accepted `apiVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ApiVersion {
    /// Version 1 of the format.
    #[serde(rename = "arcplan/v1")]
    V1,
}

/// The `azure` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Azure {
    /// The subscription id (a GUID).
    pub subscription: String,
    /// The Microsoft Entra tenant id (a GUID). Taken from the credential when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The cloud: a well-known name or a custom cloud's endpoints.
    #[serde(default)]
    pub cloud: Cloud,
    /// How arcplan obtains a token.
    #[serde(default)]
    pub credential: Credential,
}

/// Which Azure cloud to talk to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Cloud {
    /// A well-known public or sovereign cloud.
    Named(CloudName),
    /// A cloud given by its endpoints (Azure Stack Hub, the arcplan sandbox).
    Custom(CustomCloud),
}

impl Default for Cloud {
    fn default() -> Self {
        Cloud::Named(CloudName::AzureCloud)
    }
}

/// The well-known clouds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CloudName {
    /// Azure public cloud.
    AzureCloud,
    /// Azure US Government.
    AzureUSGovernment,
    /// Azure operated by 21Vianet.
    AzureChinaCloud,
}

/// A cloud given by its endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomCloud {
    /// A name for messages (for example `AzureStackHub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The Azure Resource Manager endpoint, an `https://` URL.
    #[schemars(regex(pattern = r"^https://"))]
    pub resource_manager: String,
    /// The Microsoft Entra authority host, an `https://` URL.
    #[schemars(regex(pattern = r"^https://"))]
    pub authority_host: String,
    /// The token audience/scope for ARM; defaults to the resource manager endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// A PEM file of CA certificates to trust in addition to the system roots. Relative paths
    /// are resolved against the configuration file's directory. Verification is never disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// API versions per resource type, for clouds that lag behind (Azure Stack Hub), keyed
    /// like `Microsoft.Kubernetes/connectedClusters`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub api_versions: BTreeMap<String, String>,
}

/// How arcplan obtains an Entra token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Credential {
    /// A credential kind with its settings taken from the environment.
    Kind(CredentialKind),
    /// A credential kind with explicit settings.
    Detailed(CredentialSpec),
}

impl Default for Credential {
    fn default() -> Self {
        Credential::Kind(CredentialKind::Default)
    }
}

impl Credential {
    /// The credential kind, whichever form was written.
    pub fn kind(&self) -> CredentialKind {
        match self {
            Credential::Kind(k) => *k,
            Credential::Detailed(spec) => spec.kind,
        }
    }
}

/// The kinds of credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CredentialKind {
    /// Environment service principal, then workload identity, then managed identity, then the
    /// Azure CLI.
    Default,
    /// The Azure CLI's signed-in account (`az login`).
    Cli,
    /// A service principal with a client secret.
    ServicePrincipal,
    /// Workload identity federation (for example GitHub Actions OIDC).
    WorkloadIdentity,
    /// An Azure managed identity.
    ManagedIdentity,
}

/// A credential with explicit settings. Secrets are references, never inline values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialSpec {
    /// The kind of credential.
    pub kind: CredentialKind,
    /// The application (client) id; defaults to `AZURE_CLIENT_ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The client secret of a service principal; defaults to `AZURE_CLIENT_SECRET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretRef>,
    /// The federated token file of a workload identity; defaults to
    /// `AZURE_FEDERATED_TOKEN_FILE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federated_token_file: Option<String>,
}

/// Where a secret comes from. Secrets are never written in the file itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum SecretRef {
    /// The name of an environment variable holding the secret.
    Env(String),
    /// A file holding the secret (relative to the configuration file).
    File(String),
}

/// The `access` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Access {
    /// The credential must hold at least one of these roles (by name) on the scope of each
    /// change; the plan also checks the exact actions each change needs.
    #[serde(default)]
    pub require_any_role: Vec<String>,
}

/// A resource group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceGroup {
    /// The resource group name.
    pub name: String,
    /// The subscription (a GUID) the group is in; defaults to `azure.subscription`. Groups of
    /// one name may be declared in several subscriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    /// The Azure region (required unless `existing: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The group is managed outside arcplan: it is only read, never created or deleted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub existing: bool,
    /// Tags to set (arcplan adds `arcplan-stack`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// A Kubernetes cluster to connect to Azure Arc.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cluster {
    /// The connected cluster's ARM resource name.
    pub name: String,
    /// The resource group holding it (declared in `resourceGroups`).
    pub resource_group: String,
    /// The subscription (a GUID) it is in: default, the subscription of the one declared
    /// resource group of that name, else `azure.subscription`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    /// The Azure region; defaults to the resource group's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Tags to set (arcplan adds `arcplan-stack`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The kubeconfig file; defaults to `$KUBECONFIG`, then `~/.kube/config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<String>,
    /// The kubeconfig context; defaults to the current context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The Kubernetes distribution (`generic`, `aks_workload`, `k3s`, `openshift`, ...).
    #[serde(default = "generic")]
    pub distribution: String,
    /// The infrastructure (`generic`, `azure_stack_hci`, `vsphere`, `aws`, ...).
    #[serde(default = "generic")]
    pub infrastructure: String,
    /// The Arc agents.
    #[serde(default)]
    pub agents: Agents,
    /// The connected cluster's kind: `ProvisionedCluster` for AKS hybrid (created by the
    /// hybrid stack); absent for any other cluster. Changing it replaces the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ClusterKind>,
    /// Features of the connected cluster resource (plan-time diffs, applied by ARM).
    #[serde(default, skip_serializing_if = "ClusterFeatures::is_default")]
    pub features: ClusterFeatures,
    /// Cluster extensions (`Microsoft.KubernetesConfiguration/extensions`): Azure Monitor,
    /// Azure Policy, Flux and others, installed once the cluster is connected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<Extension>,
    /// Flux GitOps configurations (`Microsoft.KubernetesConfiguration/fluxConfigurations`),
    /// as `az k8s-configuration flux create` makes them. The cluster's `microsoft.flux`
    /// extension is added implicitly (named `flux`) unless one is declared in `extensions`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flux_configurations: Vec<super::FluxConfiguration>,
}

/// The kind of a connected cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ClusterKind {
    /// An AKS hybrid cluster (AKS on Azure Local / Azure Stack HCI, VMware).
    ProvisionedCluster,
}

/// Features of a connected cluster, as `az connectedk8s connect/update` and `enable-features`
/// set them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterFeatures {
    /// Serve an OIDC issuer for the cluster's service account tokens
    /// (`oidcIssuerProfile.enabled`; `--enable-oidc-issuer`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oidc_issuer: bool,
    /// Workload identity (`securityProfile.workloadIdentity.enabled`;
    /// `--enable-workload-identity`). Needs `oidcIssuer: true`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub workload_identity: bool,
    /// Azure RBAC for the cluster (`aadProfile`; `--enable-azure-rbac`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_rbac: Option<AzureRbac>,
    /// Azure Hybrid Benefit (`azureHybridBenefit`: `True`, `False`, `NotApplicable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_hybrid_benefit: Option<HybridBenefit>,
    /// The Arc gateway for outbound connectivity (`gateway.enabled`; updated in place).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<bool>,
    /// Private link (`privateLinkState: Enabled` with `privateLinkScopeResourceId`; `az
    /// connectedk8s connect --enable-private-link --pls-arm-id`). Set at onboarding only:
    /// changing it replaces the connected cluster. Cluster connect is not available with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_link: Option<PrivateLink>,
    /// The agents' cluster-connect feature (the `clusterconnect-agent` reverse proxy; `az
    /// connectedk8s enable-features --features cluster-connect`), applied by the installer.
    /// Not declared: Helm's default (on, as `az connectedk8s connect` does, off with private
    /// link); the built-in manifests set has it only when `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_connect: Option<bool>,
    /// The agents' custom-locations feature (`enable-features --features custom-locations`),
    /// which lets the Custom Locations service reach the cluster. Needs `clusterConnect: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_locations: Option<CustomLocationsFeature>,
}

/// Private link for a connected cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrivateLink {
    /// The ARM id of the Azure Arc Private Link Scope (`Microsoft.HybridCompute/privateLinkScopes`)
    /// in the cluster's region.
    pub scope: String,
}

/// The agents' custom-locations feature.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomLocationsFeature {
    /// The object id, in your tenant, of the Custom Locations service principal (app id
    /// `bc313c14-388c-4e7d-a58e-70017303ee3b`): `az ad sp show --id
    /// bc313c14-388c-4e7d-a58e-70017303ee3b --query id -o tsv` (`--custom-locations-oid`).
    pub oid: String,
}

impl ClusterFeatures {
    /// True when nothing is declared.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// Azure RBAC on a connected cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureRbac {
    /// Entra group object ids with cluster-admin access.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admin_group_object_ids: Vec<String>,
}

/// `azureHybridBenefit` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum HybridBenefit {
    /// Opted in.
    True,
    /// Opted out.
    False,
    /// Not applicable to this cluster.
    NotApplicable,
}

/// A cluster extension, as `az k8s-extension create` installs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Extension {
    /// The extension's resource name (unique per cluster), like `azuremonitor-containers`.
    pub name: String,
    /// The extension type, like `microsoft.azuremonitor.containers`, `microsoft.policyinsights`
    /// or `microsoft.flux`. Changing it replaces the extension.
    pub extension_type: String,
    /// The release train for automatic upgrades (`Stable`, `Preview`); only with
    /// `autoUpgradeMinorVersion: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_train: Option<String>,
    /// A pinned version; requires `autoUpgradeMinorVersion: false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Let Azure upgrade the extension's minor versions.
    #[serde(default = "yes")]
    pub auto_upgrade_minor_version: bool,
    /// `cluster` (one release for the cluster, in `releaseNamespace`) or `namespace` (in
    /// `targetNamespace`). Changing the scope or its namespace replaces the extension.
    #[serde(default)]
    pub scope: ExtensionScope,
    /// For `scope: cluster`: the namespace of the release (default: the extension's choice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_namespace: Option<String>,
    /// For `scope: namespace`: the namespace it is installed in (default: the extension's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_namespace: Option<String>,
    /// Configuration settings, as name-value pairs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configuration_settings: BTreeMap<String, String>,
    /// Sensitive settings, each from an environment variable or a file (never written in this
    /// file, never shown: the plan shows a digest of them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configuration_protected_settings: BTreeMap<String, SecretRef>,
}

/// Where an extension is installed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ExtensionScope {
    /// One release for the whole cluster.
    #[default]
    Cluster,
    /// A release in one namespace.
    Namespace,
}

fn generic() -> String {
    "generic".to_owned()
}

/// How the Arc agents are installed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Agents {
    /// The agents' chart version (for example `1.21.10`); defaults to the latest the service
    /// offers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `helm` (real clusters) or `manifests` (air-gapped, GitOps, the sandbox).
    #[serde(default)]
    pub installer: Installer,
    /// For `manifests`: a file of rendered Kubernetes objects (for example `helm template`
    /// output). Absent: the built-in agent set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifests: Option<String>,
    /// How long to wait for the agents to become ready, like `20m` or `90s`.
    #[serde(default = "default_timeout")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub timeout: String,
    /// How long, after the agents are ready, to wait for Azure to show the cluster `Connected`
    /// (the `arc.connectivity` check), like `10m`.
    #[serde(default = "default_connect_timeout")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub connect_timeout: String,
    /// Let Azure upgrade the agents automatically.
    #[serde(default = "yes")]
    pub auto_upgrade: bool,
    /// An outbound proxy the agents must use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<Proxy>,
}

impl Default for Agents {
    fn default() -> Self {
        Self {
            version: None,
            installer: Installer::default(),
            manifests: None,
            timeout: default_timeout(),
            connect_timeout: default_connect_timeout(),
            auto_upgrade: true,
            proxy: None,
        }
    }
}

fn default_timeout() -> String {
    "20m".to_owned()
}

fn default_connect_timeout() -> String {
    "10m".to_owned()
}

fn yes() -> bool {
    true
}

/// The agents installer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Installer {
    /// `helm upgrade --install` of Microsoft's chart.
    #[default]
    Helm,
    /// Server-side apply of rendered manifests.
    Manifests,
}

/// Outbound proxy settings for the agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Proxy {
    /// The HTTP proxy URL (credentials in it are not allowed: use `credentials`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_proxy: Option<String>,
    /// The HTTPS proxy URL (credentials in it are not allowed: use `credentials`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_proxy: Option<String>,
    /// Hosts and CIDRs that bypass the proxy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub no_proxy: Vec<String>,
    /// A PEM file with the proxy's CA certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<String>,
    /// Proxy credentials (`user:password`), from the environment or a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<SecretRef>,
}

impl Config {
    /// A cluster's effective location: its own, or its resource group's.
    pub fn cluster_location<'a>(&'a self, cluster: &'a Cluster) -> Option<&'a str> {
        cluster.location.as_deref().or_else(|| {
            self.group_of(cluster.subscription.as_deref(), &cluster.resource_group)
                .and_then(|g| g.location.as_deref())
        })
    }
}
