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

/// How long a request may take to connect and to answer. Every HTTPS request (ARM, Entra) and
/// every Kubernetes API request has both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP and TLS connection set-up (`ARCPLAN_CONNECT_TIMEOUT`, default 10 s).
    pub connect: Duration,
    /// Waiting for an answer, and between reads of it (`ARCPLAN_RESPONSE_TIMEOUT`, default 30 s).
    pub response: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            response: Duration::from_secs(30),
        }
    }
}

/// The variable that sets [`Timeouts::connect`].
pub const CONNECT_TIMEOUT_VAR: &str = "ARCPLAN_CONNECT_TIMEOUT";
/// The variable that sets [`Timeouts::response`].
pub const RESPONSE_TIMEOUT_VAR: &str = "ARCPLAN_RESPONSE_TIMEOUT";

impl Timeouts {
    /// The defaults, overridden by `ARCPLAN_CONNECT_TIMEOUT` and `ARCPLAN_RESPONSE_TIMEOUT`
    /// (durations such as `5s` or `2m`) as `env` reports them.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, HttpError> {
        let read = |var: &str, default: Duration| -> Result<Duration, HttpError> {
            match env(var).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => match humantime::parse_duration(v.trim()) {
                    Ok(d) if !d.is_zero() => Ok(d),
                    _ => Err(HttpError::Setup(format!(
                        "{var}={v} is not a duration above zero (write it like `10s` or `2m`)"
                    ))),
                },
            }
        };
        let d = Self::default();
        Ok(Self {
            connect: read(CONNECT_TIMEOUT_VAR, d.connect)?,
            response: read(RESPONSE_TIMEOUT_VAR, d.response)?,
        })
    }

    /// From the process environment.
    pub fn from_process_env() -> Result<Self, HttpError> {
        Self::from_env(&|k| std::env::var(k).ok())
    }
}

/// The reqwest client used for ARM and for the credential's token requests, with the timeouts
/// of the process environment ([`Timeouts::from_process_env`]).
pub fn client(ca_bundle: Option<&Path>) -> Result<reqwest::Client, HttpError> {
    client_with(ca_bundle, Timeouts::from_process_env()?)
}

/// The reqwest client with explicit timeouts.
pub fn client_with(
    ca_bundle: Option<&Path>,
    timeouts: Timeouts,
) -> Result<reqwest::Client, HttpError> {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls_config(ca_bundle)?)
        .connect_timeout(timeouts.connect)
        .read_timeout(timeouts.response)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("arcplan/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| HttpError::Setup(e.to_string()))
}

/// Why a request got no answer, found by walking the error's source chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server's certificate chains to no trusted CA.
    UntrustedCertificate,
    /// The server's certificate is trusted but wrong (expired, another name, ...).
    BadCertificate(String),
    /// Another TLS failure.
    Tls(String),
    /// Nothing listens on the port.
    ConnectionRefused,
    /// The host name does not resolve.
    Dns,
    /// No connection or no answer within the timeout.
    Timeout,
    /// The connection broke (reset, closed early).
    Connection,
    /// Anything else.
    Other,
}

impl Failure {
    /// Whether repeating the request can help: a timeout or a broken or refused connection
    /// can; a certificate or name problem cannot.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Failure::Timeout | Failure::Connection | Failure::ConnectionRefused
        )
    }

    /// What happened, for a message ("the server's TLS certificate is not trusted").
    pub fn describe(&self) -> String {
        match self {
            Failure::UntrustedCertificate => {
                "the server's TLS certificate is not trusted (it is signed by an unknown CA)".into()
            }
            Failure::BadCertificate(why) => {
                format!("the server's TLS certificate is invalid ({why})")
            }
            Failure::Tls(why) => format!("the TLS handshake failed ({why})"),
            Failure::ConnectionRefused => {
                "the connection was refused (nothing listens there)".into()
            }
            Failure::Dns => "the host name does not resolve (DNS lookup failed)".into(),
            Failure::Timeout => "no answer within the timeout".into(),
            Failure::Connection => "the connection broke".into(),
            Failure::Other => "the request failed".into(),
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            Failure::UntrustedCertificate => {
                "trust the CA that signed the server's certificate: set `azure.cloud.caBundle` to its PEM file (for a sandbox: the ca.pem it wrote), or add it to the system trust store; TLS verification is never turned off"
            }
            Failure::BadCertificate(_) | Failure::Tls(_) => {
                "check the endpoint URL (host name) and the server's certificate"
            }
            Failure::ConnectionRefused => {
                "check that the endpoint is running and the URL's host and port are right"
            }
            Failure::Dns => "check the host name in the endpoint URL, and the DNS / network",
            Failure::Timeout => {
                "check that the endpoint is reachable (network, proxy, firewall); raise ARCPLAN_CONNECT_TIMEOUT / ARCPLAN_RESPONSE_TIMEOUT for a slow link"
            }
            Failure::Connection | Failure::Other => "check the network and run again",
        }
    }
}

/// One line naming a transport failure of requests to `host`: "no answer from HOST within
/// 30s after 8 tries", "HOST: the connection was refused (nothing listens there) after 3 tries".
pub fn failure_summary(failure: &Failure, host: &str, attempts: u32, waited: Duration) -> String {
    let tries = match attempts {
        0 | 1 => String::new(),
        n => format!(" after {n} tries"),
    };
    match failure {
        Failure::Timeout => format!(
            "no answer from {host} within {}{tries}",
            humantime::format_duration(waited)
        ),
        other => format!("{host}: {}{tries}", other.describe()),
    }
}

/// Whether a failed request is worth repeating: not when the failure is a certificate or a name
/// that does not resolve.
pub fn worth_retrying(e: &(dyn std::error::Error + 'static)) -> bool {
    let f = classify(e);
    f == Failure::Other || f.is_transient()
}

/// The start of a transport error's message: [`failure_summary`] for `url`'s host, waits
/// bounded by the response timeout of the process environment and `limit`, then `": "`.
pub fn failure_message(
    e: &(dyn std::error::Error + 'static),
    url: &url::Url,
    attempts: u32,
    limit: Duration,
) -> String {
    let waited = Timeouts::from_process_env()
        .unwrap_or_default()
        .response
        .min(limit);
    let host = url.host_str().unwrap_or("the server");
    format!(
        "{}: ",
        failure_summary(&classify(e), host, attempts, waited)
    )
}

/// Classifies a transport error by walking its source chain (looking inside `io::Error`s too,
/// whose `source()` skips the error they wrap).
pub fn classify(e: &(dyn std::error::Error + 'static)) -> Failure {
    let mut found = Failure::Other;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let here = classify_one(err);
        if here != Failure::Other {
            // The most specific cause wins: keep walking only past generic ones.
            found = here;
            if !matches!(found, Failure::Timeout | Failure::Connection) {
                return found;
            }
        }
        cur = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    if found == Failure::Other {
        // Last resort: the words hyper and the resolver use.
        let text = chain_text(e).to_ascii_lowercase();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return Failure::Dns;
        }
        if text.contains("timed out") || text.contains("deadline has elapsed") {
            return Failure::Timeout;
        }
    }
    found
}

fn classify_one(err: &(dyn std::error::Error + 'static)) -> Failure {
    if let Some(t) = err.downcast_ref::<rustls::Error>() {
        return match t {
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
                Failure::UntrustedCertificate
            }
            rustls::Error::InvalidCertificate(c) => Failure::BadCertificate(format!("{c:?}")),
            other => Failure::Tls(other.to_string()),
        };
    }
    if let Some(io) = err.downcast_ref::<std::io::Error>() {
        use std::io::ErrorKind as K;
        return match io.kind() {
            K::ConnectionRefused => Failure::ConnectionRefused,
            K::TimedOut => Failure::Timeout,
            K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof | K::BrokenPipe => {
                Failure::Connection
            }
            _ => Failure::Other,
        };
    }
    if let Some(r) = err.downcast_ref::<reqwest::Error>()
        && r.is_timeout()
    {
        return Failure::Timeout;
    }
    Failure::Other
}

/// The messages of an error and its sources, joined by `: ` (repeats left out).
pub fn chain_text(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_come_from_the_environment() {
        let env = |k: &str| match k {
            CONNECT_TIMEOUT_VAR => Some("3s".to_owned()),
            RESPONSE_TIMEOUT_VAR => Some("2m".to_owned()),
            _ => None,
        };
        let t = Timeouts::from_env(&env).unwrap();
        assert_eq!(t.connect, Duration::from_secs(3));
        assert_eq!(t.response, Duration::from_secs(120));
        assert_eq!(Timeouts::from_env(&|_| None).unwrap(), Timeouts::default());
        let bad = |k: &str| (k == RESPONSE_TIMEOUT_VAR).then(|| "soon".to_owned());
        let e = Timeouts::from_env(&bad).unwrap_err().to_string();
        assert!(e.contains("ARCPLAN_RESPONSE_TIMEOUT=soon"), "{e}");
    }

    #[test]
    fn causes_are_found_inside_io_errors() {
        let tls = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert_eq!(classify(&tls), Failure::UntrustedCertificate);
        assert!(!Failure::UntrustedCertificate.is_transient());
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(classify(&refused), Failure::ConnectionRefused);
        assert!(Failure::Timeout.is_transient());
    }
}
