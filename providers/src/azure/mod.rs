//! The Azure side: clouds, credentials, the ARM client and the Azure resource types.

pub mod arm;
pub mod budget;
pub mod cloud;
pub mod context;
pub mod credential;
pub mod http;
pub mod kinds;
pub mod permissions;
pub mod provider;
pub mod shared;

use arcplan_config::Config;
pub use arcplan_config::conventions::STACK_TAG;
use arcplan_engine::diag::Diagnostic;
use std::path::Path;
use std::sync::Arc;

/// The Azure provider for a configuration: cloud profile, HTTPS client (with the cloud's CA
/// bundle), credential and ARM client. Returns the provider and a description of the credential
/// for the run's header. `env` looks up environment variables (the process's, or a test's).
pub fn from_config(
    config: &Config,
    base_dir: &Path,
    env: credential::Env<'_>,
    settings: provider::AzureSettings,
) -> Result<(provider::AzureProvider, String), Diagnostic> {
    let profile = cloud::CloudProfile::from_config(&config.azure.cloud, base_dir)
        .map_err(|e| Diagnostic::error("azure-cloud", e.to_string()).with_key("azure.cloud"))?;
    let http = http::client(profile.ca_bundle.as_deref()).map_err(|e| {
        Diagnostic::error("azure-tls", e.to_string())
            .with_key("azure.cloud.caBundle")
            .with_hint("caBundle must be a PEM file of CA certificates")
    })?;
    let chosen = credential::build(
        &config.azure.credential,
        config.azure.tenant.as_deref(),
        &profile,
        &http,
        base_dir,
        env,
    )
    .map_err(|e| {
        Diagnostic::error("azure-credential", e.message)
            .with_key("azure.credential")
            .with_hint(e.hint)
    })?;
    let arm = arm::ArmClient::new(
        profile,
        http,
        chosen.credential,
        arm::shared_budget(),
        arm::RetryPolicy::default(),
    );
    Ok((
        provider::AzureProvider::new(Arc::new(arm), settings),
        chosen.description,
    ))
}
