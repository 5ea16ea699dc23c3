//! TLS for the sandbox servers: one generated certificate authority and an HTTPS server loop.
//!
//! [`TlsMaterial::generate`] creates a fresh CA (ECDSA P-256, via rcgen) and a server certificate
//! for `127.0.0.1`, `localhost` and `::1` signed by it. Clients trust the sandbox by adding
//! [`TlsMaterial::ca_pem`] as a root; nothing here ever disables certificate verification.
//!
//! [`serve_https`] serves any [`axum::Router`] over HTTPS (HTTP/1.1 and HTTP/2, chosen by ALPN)
//! until a [`CancellationToken`] is cancelled, then shuts down gracefully.
//!
//! Limits: keys come from the operating system's randomness, not from the sandbox seed, so two runs
//! with the same seed still have different certificates. The certificates are valid for 30 days.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// How long graceful shutdown waits for open connections (e.g. Kubernetes watches) before it
/// aborts them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Errors while generating certificates or starting a server.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rcgen could not generate a key or certificate.
    #[error("cannot generate the sandbox certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls rejected the generated configuration.
    #[error("cannot build the TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// Binding the listening socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// The sandbox's certificate authority and the server certificate it signed.
///
/// Cheap to clone: the rustls configuration is shared.
#[derive(Clone)]
pub struct TlsMaterial {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial").finish_non_exhaustive()
    }
}

impl TlsMaterial {
    /// Generates a new CA and a server certificate for `127.0.0.1`, `localhost` and `::1`.
    pub fn generate() -> Result<Self, TlsError> {
        let now = time::OffsetDateTime::now_utc();
        let not_before = now - time::Duration::hours(1);
        let not_after = now + time::Duration::days(30);

        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        let mut ca_dn = DistinguishedName::new();
        ca_dn.push(DnType::CommonName, "arcplan sandbox CA");
        ca_dn.push(DnType::OrganizationName, "arcplan sandbox");
        ca_params.distinguished_name = ca_dn;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params.not_before = not_before;
        ca_params.not_after = not_after;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca_pem = ca_cert.pem();
        let ca_der = ca_cert.der().clone();
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "localhost");
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = not_before;
        params.not_after = not_after;
        let server_cert = params.signed_by(&server_key, &issuer)?;

        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![server_cert.der().clone(), ca_der.clone()], key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

        Ok(Self {
            ca_pem,
            ca_der,
            server_config: Arc::new(config),
        })
    }

    /// The CA certificate, PEM encoded: the only root a client needs to trust the sandbox.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate, DER encoded.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// The rustls server configuration (ALPN `h2`, `http/1.1`).
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.server_config)
    }

    /// A rustls client configuration (ring provider) that trusts only the sandbox CA, with full
    /// certificate verification. Handy for tests and for the CLI's own clients.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone())?;
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// Marker a layer puts into a response's extensions to make the server close the connection
/// without sending that response (a "dropped connection" fault).
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

/// Error returned to hyper so that it aborts the connection.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault injection")]
struct Dropped;

/// A running HTTPS server.
#[derive(Debug)]
pub struct ServerHandle {
    /// The address the server listens on (the real port when port 0 was asked for).
    pub addr: SocketAddr,
    /// Finishes after the cancellation token fired and the connections closed.
    pub task: JoinHandle<()>,
}

/// Serves `router` over HTTPS on `addr` (port 0 picks a free port) until `cancel` is cancelled.
///
/// Both HTTP/1.1 and HTTP/2 are served (ALPN). Returns once the socket is bound. On cancellation the
/// server stops accepting, asks open connections to finish (graceful shutdown), and aborts those still
/// open after two seconds. A response carrying the [`DropConnection`] extension is never sent: the
/// connection is closed instead.
pub async fn serve_https(
    router: Router,
    addr: SocketAddr,
    tls: &TlsMaterial,
    cancel: CancellationToken,
) -> Result<ServerHandle, TlsError> {
    let listener = bind(addr).await?;
    serve_listener(listener, router, tls, cancel)
}

/// Binds a TCP listener on `addr` (port 0 picks a free port), for [`serve_listener`]: binding first
/// lets a caller learn every server's address before building the routers.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, TlsError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| TlsError::Bind { addr, source })
}

/// Like [`serve_https`], on an already bound listener.
pub fn serve_listener(
    listener: TcpListener,
    router: Router,
    tls: &TlsMaterial,
    cancel: CancellationToken,
) -> Result<ServerHandle, TlsError> {
    let local = listener.local_addr().map_err(|source| TlsError::Bind {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        source,
    })?;
    let acceptor = TlsAcceptor::from(tls.server_config());
    let task = tokio::spawn(accept_loop(listener, acceptor, router, cancel));
    Ok(ServerHandle { addr: local, task })
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    cancel: CancellationToken,
) {
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, peer)) = accepted else {
            // Transient accept errors (e.g. too many open files): back off briefly.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let cancel = cancel.clone();
        tracker.spawn(async move {
            let handshake = tokio::select! {
                () = cancel.cancelled() => return,
                r = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)) => r,
            };
            let Ok(Ok(tls_stream)) = handshake else {
                return;
            };
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                let router = router.clone();
                async move {
                    let req = req.map(Body::new);
                    let resp = match router.oneshot(req).await {
                        Ok(resp) => resp,
                        Err(never) => match never {},
                    };
                    if resp.extensions().get::<DropConnection>().is_some() {
                        return Err(Dropped);
                    }
                    Ok::<_, Dropped>(resp)
                }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls_stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = cancel.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn.as_mut()).await;
                }
            }
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_millis(500), tracker.wait()).await;
}
