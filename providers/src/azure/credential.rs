//! Credentials: how arcplan gets an Entra token for ARM, through azure_identity.
//!
//! Every kind is selectable; `default` picks the first whose settings are present, in the order
//! environment service principal → workload identity → managed identity → Azure CLI, without
//! probing the network. The credential's token requests go through the same HTTPS client (and
//! CA bundle) as ARM, to the cloud's authority host. Secrets are read from the environment or a
//! file, never from the configuration; no message names a secret's value.

use super::cloud::{CloudProfile, resolve};
use arcplan_config::{Credential, CredentialKind, SecretRef};
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, RetryOptions, Transport};
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientSecretCredential,
    ClientSecretCredentialOptions, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId, WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
use std::path::Path;
use std::sync::Arc;

/// Why no credential could be set up. Never holds a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CredentialError {
    /// What is missing or wrong.
    pub message: String,
    /// What to do.
    pub hint: String,
}

fn err(message: impl Into<String>, hint: impl Into<String>) -> CredentialError {
    CredentialError {
        message: message.into(),
        hint: hint.into(),
    }
}

/// The credential chosen, and a description for the run's header (no secrets).
pub struct Chosen {
    /// The credential.
    pub credential: Arc<dyn TokenCredential>,
    /// For example `service principal 0000-… from the environment`.
    pub description: String,
}

/// Environment lookups (injectable for tests).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Builds the configured credential (see [`build_unexplained`]), wrapped so that a failure
/// names its cause ([`Explained`]).
pub fn build(
    credential: &Credential,
    tenant: Option<&str>,
    profile: &CloudProfile,
    http: &reqwest::Client,
    base_dir: &Path,
    env: Env<'_>,
) -> Result<Chosen, CredentialError> {
    let chosen = build_unexplained(credential, tenant, profile, http, base_dir, env)?;
    let response = crate::azure::http::Timeouts::from_env(env)
        .unwrap_or_default()
        .response;
    Ok(Chosen {
        credential: Arc::new(Explained {
            inner: chosen.credential,
            authority: profile
                .authority_host
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
            attempts: TOKEN_ATTEMPTS,
            base_delay: std::time::Duration::from_millis(500),
            response,
        }),
        description: chosen.description,
    })
}

/// Token requests in all (the first included) when the failure is transient.
pub const TOKEN_ATTEMPTS: u32 = 4;

/// A credential whose failures name their cause (certificate not trusted, connection refused,
/// DNS, timeout) at once. Transient failures (a timeout, a refused or broken connection, 429
/// and 5xx answers) are retried a few times; a certificate or name problem is not.
#[derive(Debug)]
pub struct Explained {
    inner: Arc<dyn TokenCredential>,
    authority: String,
    attempts: u32,
    base_delay: std::time::Duration,
    response: std::time::Duration,
}

#[async_trait::async_trait]
impl TokenCredential for Explained {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<azure_core::credentials::AccessToken> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let e = match self.inner.get_token(scopes, options.clone()).await {
                Ok(t) => return Ok(t),
                Err(e) => e,
            };
            let failure = crate::azure::http::classify(&e);
            let busy = http_status(&e).is_some_and(|s| s == 429 || s >= 500);
            if (failure.is_transient() || busy) && attempt < self.attempts {
                let step = self.base_delay.saturating_mul(1 << (attempt - 1).min(6));
                tokio::time::sleep(step).await;
                continue;
            }
            return Err(self.explain(e, &failure, attempt));
        }
    }
}

impl Explained {
    fn explain(
        &self,
        e: azure_core::Error,
        failure: &crate::azure::http::Failure,
        attempts: u32,
    ) -> azure_core::Error {
        use crate::azure::http::Failure;
        let tries = if attempts == 1 {
            String::new()
        } else {
            format!(" after {attempts} tries")
        };
        let what = match failure {
            // Not a transport failure (a rejected secret, an error answer): azure_identity's
            // message says it.
            Failure::Other => return e,
            Failure::Timeout => format!(
                "no answer within {}{tries}",
                humantime::format_duration(self.response)
            ),
            other => format!("{}{tries}", other.describe()),
        };
        azure_core::Error::with_message(
            azure_core::error::ErrorKind::Credential,
            format!(
                "cannot get a token from {}: {what}; {}",
                self.authority,
                failure.hint()
            ),
        )
    }
}

/// The HTTP status of an error answer anywhere in an azure_core error's chain.
fn http_status(e: &azure_core::Error) -> Option<u16> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(a) = err.downcast_ref::<azure_core::Error>()
            && let azure_core::error::ErrorKind::HttpResponse { status, .. } = a.kind()
        {
            return Some(u16::from(*status));
        }
        cur = err.source();
    }
    None
}

/// Builds the configured credential as azure_identity has it.
// azure_identity's options structs have private fields, so they can only be built from
// `Default` and then assigned.
#[allow(clippy::field_reassign_with_default)]
pub fn build_unexplained(
    credential: &Credential,
    tenant: Option<&str>,
    profile: &CloudProfile,
    http: &reqwest::Client,
    base_dir: &Path,
    env: Env<'_>,
) -> Result<Chosen, CredentialError> {
    let mut custom = CustomConfiguration::default();
    custom.authority_host = profile
        .authority_host
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    let client_options = ClientOptions {
        transport: Some(Transport::new(Arc::new(http.clone()))),
        cloud: Some(Arc::new(CloudConfiguration::Custom(custom))),
        // [`Explained`] retries, and only what can help: azure_identity's own policy would
        // retry a certificate the CA bundle does not trust for a minute and then say only
        // "retry policy expired".
        retry: RetryOptions::none(),
        ..Default::default()
    };
    let spec = match credential {
        Credential::Detailed(s) => Some(s),
        Credential::Kind(_) => None,
    };
    let client_id = spec
        .and_then(|s| s.client_id.clone())
        .or_else(|| env("AZURE_CLIENT_ID"));
    let tenant = tenant.map(str::to_owned).or_else(|| env("AZURE_TENANT_ID"));
    let token_file = spec
        .and_then(|s| s.federated_token_file.clone())
        .map(|f| resolve(base_dir, &f).display().to_string())
        .or_else(|| env("AZURE_FEDERATED_TOKEN_FILE"));
    let from_azure = |e: azure_core::Error, what: &str| {
        err(
            format!("cannot set up the {what} credential: {e}"),
            "check the credential settings in `azure.credential` and the environment",
        )
    };

    let service_principal = |secret: Secret| -> Result<Chosen, CredentialError> {
        let tenant = tenant.clone().ok_or_else(|| {
            err(
                "a service principal needs a tenant id",
                "set `azure.tenant` or AZURE_TENANT_ID",
            )
        })?;
        let client_id = client_id.clone().ok_or_else(|| {
            err(
                "a service principal needs a client id",
                "set `azure.credential.clientId` or AZURE_CLIENT_ID",
            )
        })?;
        let credential = ClientSecretCredential::new(
            &tenant,
            client_id.clone(),
            secret,
            Some(ClientSecretCredentialOptions {
                client_options: client_options.clone(),
            }),
        )
        .map_err(|e| from_azure(e, "service principal"))?;
        Ok(Chosen {
            credential,
            description: format!("service principal {client_id} (tenant {tenant})"),
        })
    };
    let workload_identity = |file: String| -> Result<Chosen, CredentialError> {
        let mut o = WorkloadIdentityCredentialOptions::default();
        o.credential_options.client_options = client_options.clone();
        o.client_id = client_id.clone();
        o.tenant_id = tenant.clone();
        o.token_file_path = Some(file.clone().into());
        if o.client_id.is_none() || o.tenant_id.is_none() {
            return Err(err(
                "workload identity needs a client id and a tenant id",
                "set AZURE_CLIENT_ID and AZURE_TENANT_ID (the GitHub Actions azure/login step and the AKS webhook set them)",
            ));
        }
        let credential = WorkloadIdentityCredential::new(Some(o))
            .map_err(|e| from_azure(e, "workload identity"))?;
        Ok(Chosen {
            credential,
            description: format!(
                "workload identity {} (token file {file})",
                client_id.clone().unwrap_or_default()
            ),
        })
    };
    let managed_identity = || -> Result<Chosen, CredentialError> {
        let mut o = ManagedIdentityCredentialOptions::default();
        o.client_options = client_options.clone();
        o.user_assigned_id = client_id.clone().map(UserAssignedId::ClientId);
        let credential = ManagedIdentityCredential::new(Some(o))
            .map_err(|e| from_azure(e, "managed identity"))?;
        Ok(Chosen {
            credential,
            description: match &client_id {
                Some(id) => format!("user-assigned managed identity {id}"),
                None => "system-assigned managed identity".to_owned(),
            },
        })
    };
    let cli = || -> Result<Chosen, CredentialError> {
        let mut o = AzureCliCredentialOptions::default();
        o.tenant_id = tenant.clone();
        let credential =
            AzureCliCredential::new(Some(o)).map_err(|e| from_azure(e, "Azure CLI"))?;
        Ok(Chosen {
            credential,
            description: "the Azure CLI's signed-in account (az login)".to_owned(),
        })
    };

    match credential.kind() {
        CredentialKind::ServicePrincipal => {
            let secret = match spec.and_then(|s| s.client_secret.as_ref()) {
                Some(r) => read_secret(r, base_dir, env)?,
                None => env("AZURE_CLIENT_SECRET").map(Secret::new).ok_or_else(|| {
                    err(
                        "the service principal has no client secret",
                        "set AZURE_CLIENT_SECRET, or `clientSecret: { env: NAME }` / `{ file: PATH }`",
                    )
                })?,
            };
            service_principal(secret)
        }
        CredentialKind::WorkloadIdentity => {
            let file = token_file.ok_or_else(|| {
                err(
                    "workload identity needs a federated token file",
                    "set AZURE_FEDERATED_TOKEN_FILE or `federatedTokenFile:`",
                )
            })?;
            workload_identity(file)
        }
        CredentialKind::ManagedIdentity => managed_identity(),
        CredentialKind::Cli => cli(),
        CredentialKind::Default => {
            if let (Some(secret), Some(_), Some(_)) =
                (env("AZURE_CLIENT_SECRET"), &client_id, &tenant)
            {
                let mut c = service_principal(Secret::new(secret))?;
                c.description.push_str(" from the environment");
                return Ok(c);
            }
            if let Some(file) = token_file {
                return workload_identity(file);
            }
            if env("IDENTITY_ENDPOINT").is_some() || env("MSI_ENDPOINT").is_some() {
                return managed_identity();
            }
            if on_path("az", env) {
                return cli();
            }
            Err(err(
                "no credential found: tried an environment service principal (AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_TENANT_ID), workload identity (AZURE_FEDERATED_TOKEN_FILE), managed identity (IDENTITY_ENDPOINT) and the Azure CLI (`az` on PATH)",
                "set one of those up, or choose a kind with `azure.credential:`",
            ))
        }
    }
}

/// Reads a secret reference. Errors name the variable or file, never the value.
pub fn read_secret(
    r: &SecretRef,
    base_dir: &Path,
    env: Env<'_>,
) -> Result<Secret, CredentialError> {
    match r {
        SecretRef::Env(name) => env(name).map(Secret::new).ok_or_else(|| {
            err(
                format!("the environment variable {name} is not set (or empty)"),
                format!("export {name} before running arcplan"),
            )
        }),
        SecretRef::File(path) => {
            let p = resolve(base_dir, path);
            let text = std::fs::read_to_string(&p).map_err(|e| {
                err(
                    format!("cannot read the secret file {}: {e}", p.display()),
                    "check the path and its permissions",
                )
            })?;
            let value = text.trim_end_matches(['\r', '\n']).to_owned();
            if value.is_empty() {
                return Err(err(
                    format!("the secret file {} is empty", p.display()),
                    "write the secret into it",
                ));
            }
            Ok(Secret::new(value))
        }
    }
}

fn on_path(cmd: &str, env: Env<'_>) -> bool {
    env("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcplan_config::{Cloud, CloudName, CredentialSpec};
    use std::collections::HashMap;

    fn run(credential: &Credential, vars: &[(&str, &str)]) -> Result<Chosen, CredentialError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = move |k: &str| vars.get(k).cloned();
        let profile =
            CloudProfile::from_config(&Cloud::Named(CloudName::AzureCloud), Path::new("."))
                .unwrap();
        let http = crate::azure::http::client(None).unwrap();
        build(credential, None, &profile, &http, Path::new("."), &env)
    }

    #[test]
    fn default_prefers_the_environment_service_principal() {
        let c = run(
            &Credential::Kind(CredentialKind::Default),
            &[
                ("AZURE_CLIENT_ID", "app"),
                ("AZURE_CLIENT_SECRET", "s3cr3t-value"),
                ("AZURE_TENANT_ID", "t1"),
                ("AZURE_FEDERATED_TOKEN_FILE", "/x"),
            ],
        )
        .ok()
        .unwrap();
        assert_eq!(
            c.description,
            "service principal app (tenant t1) from the environment"
        );
        let tok = std::env::temp_dir().join(format!("arcplan-wi-{}", std::process::id()));
        std::fs::write(&tok, "header.payload.signature").unwrap();
        let c = run(
            &Credential::Kind(CredentialKind::Default),
            &[
                ("AZURE_CLIENT_ID", "app"),
                ("AZURE_TENANT_ID", "t1"),
                ("AZURE_FEDERATED_TOKEN_FILE", tok.to_str().unwrap()),
            ],
        )
        .map_err(|e| e.to_string())
        .unwrap();
        assert!(
            c.description.starts_with("workload identity app"),
            "{}",
            c.description
        );
    }

    #[test]
    fn default_without_anything_says_what_it_tried() {
        let e = run(&Credential::Kind(CredentialKind::Default), &[])
            .err()
            .unwrap();
        assert!(e.message.contains("AZURE_FEDERATED_TOKEN_FILE"), "{e}");
    }

    #[test]
    fn secret_references_name_the_source_never_the_value() {
        let spec = Credential::Detailed(CredentialSpec {
            kind: CredentialKind::ServicePrincipal,
            client_id: Some("app".into()),
            client_secret: Some(SecretRef::Env("SP_SECRET".into())),
            federated_token_file: None,
        });
        let e = run(&spec, &[("AZURE_TENANT_ID", "t")]).err().unwrap();
        assert_eq!(
            e.message,
            "the environment variable SP_SECRET is not set (or empty)"
        );
        assert!(run(&spec, &[("AZURE_TENANT_ID", "t"), ("SP_SECRET", "value")]).is_ok());
        let e = run(&spec, &[("SP_SECRET", "value")]).err().unwrap();
        assert!(e.message.contains("tenant"), "{e}");
        assert!(!format!("{e:?}").contains("value\""));
    }
}
