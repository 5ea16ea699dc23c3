//! ARM errors: what went wrong, with what is needed to act on it and to report it to Microsoft.

use std::fmt;

/// What went wrong, coarsely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArmErrorKind {
    /// ARM answered with an error status.
    Http,
    /// The request never got an answer (connection, TLS, timeout).
    Transport,
    /// No token could be obtained.
    Credential,
    /// A long-running operation ended Failed or Canceled.
    OperationFailed,
    /// A long-running operation did not finish in time.
    Timeout,
    /// The run was interrupted.
    Cancelled,
}

/// An ARM error with what is needed to act on it and to report it to Microsoft.
#[derive(Debug, Clone)]
pub struct ArmError {
    /// The kind.
    pub kind: ArmErrorKind,
    /// The HTTP status, when there was one.
    pub status: Option<u16>,
    /// The ARM error code (`AuthorizationFailed`, `ResourceGroupNotFound`, ...).
    pub code: String,
    /// ARM's message.
    pub message: String,
    /// `METHOD /path?query` of the request.
    pub request: String,
    /// `x-ms-request-id` of the failing response.
    pub request_id: Option<String>,
    /// The run's correlation id.
    pub correlation_id: String,
}

impl ArmError {
    /// True for a 404.
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }

    /// What to do next, for the codes worth explaining.
    pub fn hint(&self) -> Option<String> {
        let code = self.code.as_str();
        Some(match code {
            "AuthorizationFailed" => "the credential lacks a role for this action at this scope; grant Owner, Contributor or a role that includes the action named above (`az role assignment create`)".into(),
            "MissingSubscriptionRegistration" => {
                let ns = quoted(&self.message).unwrap_or("the resource provider".into());
                format!("register {ns}: add it to `resourceProviders` (or run `az provider register --namespace {ns}`)")
            }
            "ResourceGroupNotFound" => "declare the resource group under `resourceGroups` (arcplan creates it), or check its name".into(),
            "SubscriptionNotFound" => "check `azure.subscription` and that the credential's tenant holds it (`az account list`)".into(),
            "InvalidAuthenticationTokenTenant" => "the token is for another tenant: set `azure.tenant` to the subscription's tenant".into(),
            "ExpiredAuthenticationToken" | "InvalidAuthenticationToken" | "AuthenticationFailed" => "the credential's token was rejected; sign in again or check the credential settings".into(),
            "InvalidAuthenticationTokenAudience" => "the token's audience does not match this cloud: set `azure.cloud.audience`".into(),
            _ if self.kind == ArmErrorKind::Transport => "check the network, proxy and `azure.cloud` endpoints (and `caBundle` for a private CA)".into(),
            _ if self.kind == ArmErrorKind::Timeout => "the operation may still finish in Azure; run plan again to see where it stands".into(),
            _ if self.kind == ArmErrorKind::Cancelled => "the operation may still finish in Azure; run plan again to see where it stands".into(),
            _ if self.status == Some(429) => "ARM kept throttling; lower --parallelism or try again later".into(),
            _ => return None,
        })
    }
}

fn quoted(s: &str) -> Option<String> {
    let start = s.find('\'')? + 1;
    let end = s[start..].find('\'')? + start;
    Some(s[start..end].to_owned())
}

impl fmt::Display for ArmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(s) => write!(
                f,
                "{} failed: {s} {}: {}",
                self.request, self.code, self.message
            )?,
            None => write!(
                f,
                "{} failed: {}: {}",
                self.request, self.code, self.message
            )?,
        }
        if let Some(id) = &self.request_id {
            write!(f, " (x-ms-request-id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ArmError {}
