//! Azure clouds: their endpoints, token scope and the API version of each resource type.
//!
//! Sovereign clouds and Azure Stack Hub lag behind public Azure, so API versions belong to the
//! cloud profile: the defaults are the latest stable versions in the official specs, and a
//! custom cloud may override any of them.

use arcplan_config::{Cloud, CloudName};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use url::Url;

/// A resource type whose API version is configurable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ApiKind {
    /// `Microsoft.Resources/subscriptions`.
    Subscriptions,
    /// `Microsoft.Resources/subscriptions/resourceGroups` (and resource listing, providers).
    Resources,
    /// `Microsoft.Authorization/*`.
    Authorization,
    /// `Microsoft.Kubernetes/connectedClusters`.
    ConnectedClusters,
    /// `Microsoft.KubernetesConfiguration/extensions`.
    Extensions,
    /// `Microsoft.ExtendedLocation/customLocations`.
    CustomLocations,
    /// `Microsoft.KubernetesConfiguration/fluxConfigurations`.
    FluxConfigurations,
}

impl ApiKind {
    /// The key used in `cloud.apiVersions`.
    pub fn key(self) -> &'static str {
        match self {
            ApiKind::Subscriptions => "Microsoft.Resources/subscriptions",
            ApiKind::Resources => "Microsoft.Resources/resourceGroups",
            ApiKind::Authorization => "Microsoft.Authorization/permissions",
            ApiKind::ConnectedClusters => "Microsoft.Kubernetes/connectedClusters",
            ApiKind::Extensions => "Microsoft.KubernetesConfiguration/extensions",
            ApiKind::CustomLocations => "Microsoft.ExtendedLocation/customLocations",
            ApiKind::FluxConfigurations => "Microsoft.KubernetesConfiguration/fluxConfigurations",
        }
    }

    /// The latest stable version in `specs/azure`.
    pub fn default_version(self) -> &'static str {
        match self {
            ApiKind::Subscriptions => "2022-12-01",
            ApiKind::Resources => "2025-04-01",
            ApiKind::Authorization => "2022-04-01",
            ApiKind::ConnectedClusters => "2026-05-01",
            ApiKind::Extensions => "2025-03-01",
            ApiKind::CustomLocations => "2021-08-15",
            ApiKind::FluxConfigurations => "2025-04-01",
        }
    }

    /// Every kind, for validation of overrides.
    pub const ALL: [ApiKind; 7] = [
        ApiKind::Subscriptions,
        ApiKind::Resources,
        ApiKind::Authorization,
        ApiKind::ConnectedClusters,
        ApiKind::Extensions,
        ApiKind::CustomLocations,
        ApiKind::FluxConfigurations,
    ];
}

/// Everything arcplan needs to know about a cloud.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudProfile {
    /// The environment name (`AzureCloud`, or the custom cloud's name).
    pub name: String,
    /// The ARM endpoint.
    pub resource_manager: Url,
    /// The Entra authority host.
    pub authority_host: Url,
    /// The OAuth scope for ARM tokens (`<audience>/.default`).
    pub scope: String,
    /// Extra CA certificates to trust (PEM file).
    pub ca_bundle: Option<PathBuf>,
    api_versions: BTreeMap<String, String>,
}

/// Why a cloud cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("azure.cloud: {0}")]
pub struct CloudError(pub String);

fn url(s: &str, what: &str) -> Result<Url, CloudError> {
    let u = Url::parse(s).map_err(|e| CloudError(format!("{what} `{s}` is not a URL: {e}")))?;
    if u.scheme() != "https" {
        return Err(CloudError(format!("{what} `{s}` must use https")));
    }
    Ok(u)
}

impl CloudProfile {
    /// The profile of a configured cloud; relative paths resolve against `base_dir`.
    pub fn from_config(cloud: &Cloud, base_dir: &Path) -> Result<Self, CloudError> {
        let named = |name: &str, arm: &str, login: &str| CloudProfile {
            name: name.to_owned(),
            resource_manager: Url::parse(arm).expect("well-known URL"),
            authority_host: Url::parse(login).expect("well-known URL"),
            scope: format!("{}/.default", arm.trim_end_matches('/')),
            ca_bundle: None,
            api_versions: BTreeMap::new(),
        };
        Ok(match cloud {
            Cloud::Named(CloudName::AzureCloud) => named(
                "AzureCloud",
                "https://management.azure.com/",
                "https://login.microsoftonline.com/",
            ),
            Cloud::Named(CloudName::AzureUSGovernment) => named(
                "AzureUSGovernment",
                "https://management.usgovcloudapi.net/",
                "https://login.microsoftonline.us/",
            ),
            Cloud::Named(CloudName::AzureChinaCloud) => named(
                "AzureChinaCloud",
                "https://management.chinacloudapi.cn/",
                "https://login.chinacloudapi.cn/",
            ),
            Cloud::Custom(c) => {
                let resource_manager = url(&c.resource_manager, "resourceManager")?;
                let authority_host = url(&c.authority_host, "authorityHost")?;
                let audience = c
                    .audience
                    .clone()
                    .unwrap_or_else(|| resource_manager.as_str().to_owned());
                for key in c.api_versions.keys() {
                    if !ApiKind::ALL
                        .iter()
                        .any(|k| k.key().eq_ignore_ascii_case(key))
                    {
                        let known: Vec<&str> = ApiKind::ALL.iter().map(|k| k.key()).collect();
                        return Err(CloudError(format!(
                            "apiVersions: `{key}` is not a resource type arcplan calls (known: {})",
                            known.join(", ")
                        )));
                    }
                }
                CloudProfile {
                    name: c
                        .name
                        .clone()
                        .unwrap_or_else(|| "AzureCustomCloud".to_owned()),
                    resource_manager,
                    authority_host,
                    scope: format!("{}/.default", audience.trim_end_matches('/')),
                    ca_bundle: c.ca_bundle.as_ref().map(|p| resolve(base_dir, p)),
                    api_versions: c
                        .api_versions
                        .iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                        .collect(),
                }
            }
        })
    }

    /// The API version to use for a kind of resource.
    pub fn api_version(&self, kind: ApiKind) -> &str {
        self.api_versions
            .get(&kind.key().to_ascii_lowercase())
            .map(String::as_str)
            .unwrap_or(kind.default_version())
    }
}

/// Resolves `~/` and relative paths.
pub fn resolve(base_dir: &Path, p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    let path = PathBuf::from(p);
    if path.is_absolute() {
        path
    } else {
        base_dir.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcplan_config::CustomCloud;

    #[test]
    fn well_known_clouds() {
        let p =
            CloudProfile::from_config(&Cloud::Named(CloudName::AzureUSGovernment), Path::new("."))
                .unwrap();
        assert_eq!(
            p.resource_manager.as_str(),
            "https://management.usgovcloudapi.net/"
        );
        assert_eq!(p.scope, "https://management.usgovcloudapi.net/.default");
        assert_eq!(p.api_version(ApiKind::ConnectedClusters), "2026-05-01");
    }

    #[test]
    fn custom_clouds_override_versions_and_resolve_the_ca() {
        let c = Cloud::Custom(CustomCloud {
            name: Some("AzureStackHub".into()),
            resource_manager: "https://management.local.azurestack.external".into(),
            authority_host: "https://login.microsoftonline.com".into(),
            audience: Some("https://management.contoso.onmicrosoft.com/abc".into()),
            ca_bundle: Some("certs/ca.pem".into()),
            api_versions: [(
                "Microsoft.Kubernetes/connectedClusters".to_owned(),
                "2021-10-01".to_owned(),
            )]
            .into(),
        });
        let p = CloudProfile::from_config(&c, Path::new("/etc/arcplan")).unwrap();
        assert_eq!(p.api_version(ApiKind::ConnectedClusters), "2021-10-01");
        assert_eq!(p.api_version(ApiKind::Resources), "2025-04-01");
        assert_eq!(
            p.scope,
            "https://management.contoso.onmicrosoft.com/abc/.default"
        );
        assert_eq!(
            p.ca_bundle.as_deref(),
            Some(Path::new("/etc/arcplan/certs/ca.pem"))
        );
    }

    #[test]
    fn custom_clouds_reject_http_and_unknown_types() {
        let mut c = CustomCloud {
            name: None,
            resource_manager: "http://insecure".into(),
            authority_host: "https://login".into(),
            audience: None,
            ca_bundle: None,
            api_versions: BTreeMap::new(),
        };
        let e = CloudProfile::from_config(&Cloud::Custom(c.clone()), Path::new(".")).unwrap_err();
        assert!(e.0.contains("must use https"), "{e}");
        c.resource_manager = "https://ok".into();
        c.api_versions
            .insert("Microsoft.Foo/bars".into(), "2020-01-01".into());
        let e = CloudProfile::from_config(&Cloud::Custom(c), Path::new(".")).unwrap_err();
        assert!(e.0.contains("Microsoft.Foo/bars"), "{e}");
    }
}
