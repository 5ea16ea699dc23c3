//! The HTTPS client: rustls (ring) trusting the system roots plus an optional CA bundle.
//! Certificate verification is never disabled; a custom CA is how Azure Stack Hub and the
//! sandbox are trusted.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The CA bundle cannot be read.
    #[error("cannot read the CA bundle {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The CA bundle holds no usable certificate.
    #[error("the CA bundle {0} holds no PEM certificate")]
    Empty(String),
    /// A certificate was rejected.
    #[error("the CA bundle {path} has an invalid certificate: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// TLS or client setup failed.
    #[error("cannot set up HTTPS: {0}")]
    Setup(String),
}

/// A rustls client configuration trusting the system roots and the PEM certificates in
/// `ca_bundle`.
pub fn tls_config(ca_bundle: Option<&Path>) -> Result<rustls::ClientConfig, HttpError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A broken system certificate is skipped, as browsers and curl do.
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_bundle {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|source| HttpError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| HttpError::Invalid {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            roots.add(cert).map_err(|e| HttpError::Invalid {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(HttpError::Empty(shown));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// The reqwest client used for ARM and for the credential's token requests.
pub fn client(ca_bundle: Option<&Path>) -> Result<reqwest::Client, HttpError> {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls_config(ca_bundle)?)
        .connect_timeout(Duration::from_secs(15))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("arcplan/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| HttpError::Setup(e.to_string()))
}
