//! The HTTPS transport of the Kubernetes clients: one hyper client (connection pool, rustls
//! configuration, session cache) per distinct TLS setting, shared by every context that has it.
//! A fleet whose contexts share a CA and authenticate by token makes one TLS stack, not one
//! per cluster. Verification stays on: contexts that turn it off are refused before this.

use http::{Request, Response};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::{Body, ConfigExt as _};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use tower::{BoxError, ServiceBuilder, ServiceExt as _};

type Https = hyper_timeout::TimeoutConnector<hyper_rustls::HttpsConnector<HttpConnector>>;
type Http = HyperClient<Https, Body>;

/// How long an idle connection is kept for reuse.
const POOL_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

/// What makes two contexts' TLS stacks interchangeable.
#[derive(Clone, PartialEq, Eq, Hash)]
struct TlsKey {
    root_cert: Option<Vec<Vec<u8>>>,
    root_cert_file: Option<PathBuf>,
    tls_server_name: Option<String>,
    timeouts: [Option<std::time::Duration>; 3],
}

/// The shared hyper clients, by TLS setting.
#[derive(Default)]
pub(crate) struct Transports(Mutex<HashMap<TlsKey, Http>>);

/// A boxed response body, as kube's client takes it.
type DynBody = dyn http_body::Body<Data = bytes::Bytes, Error = BoxError> + Send + Unpin;

/// The service a kube client is built on.
type KubeService = tower::util::BoxService<Request<Body>, Response<Box<DynBody>>, BoxError>;

impl Transports {
    /// The service of a kube client for `config` on a shared transport, with `retry` around it;
    /// `None` when the context needs a stack of its own (a client certificate, an exec plugin or
    /// a proxy), which the caller then builds as kube does. TLS verification is always on: a
    /// context that turns it off was refused before a client is built (`access::connect`).
    pub(crate) fn service<P>(
        &self,
        config: &kube::Config,
        retry: P,
    ) -> Result<Option<KubeService>, kube::Error>
    where
        P: tower::retry::Policy<Request<Body>, Response<Box<DynBody>>, BoxError>
            + Clone
            + Send
            + Sync
            + 'static,
        P::Future: Send,
    {
        let a = &config.auth_info;
        if a.client_certificate.is_some()
            || a.client_certificate_data.is_some()
            || a.client_key.is_some()
            || a.client_key_data.is_some()
            || a.exec.is_some()
            || config.proxy_url.is_some()
        {
            return Ok(None);
        }
        let key = TlsKey {
            root_cert: config.root_cert.clone(),
            root_cert_file: config.root_cert_file.clone(),
            tls_server_name: config.tls_server_name.clone(),
            timeouts: [
                config.connect_timeout,
                config.read_timeout,
                config.write_timeout,
            ],
        };
        let http = {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            match map.get(&key) {
                Some(h) => h.clone(),
                None => {
                    let mut tcp = HttpConnector::new();
                    tcp.enforce_http(false);
                    let https = config.rustls_https_connector_with_connector(tcp)?;
                    let mut connector = hyper_timeout::TimeoutConnector::new(https);
                    connector.set_connect_timeout(config.connect_timeout);
                    connector.set_read_timeout(config.read_timeout);
                    connector.set_write_timeout(config.write_timeout);
                    // A connection idle for a while is closed: a fleet's clusters are each
                    // read in a burst, and a planned cluster's connection (its read buffer and
                    // TLS state) is not kept for the rest of the run.
                    let h: Http = HyperClient::builder(TokioExecutor::new())
                        .pool_idle_timeout(POOL_IDLE)
                        .pool_timer(TokioTimer::new())
                        .build(connector);
                    map.insert(key, h.clone());
                    h
                }
            }
        };
        let service = ServiceBuilder::new()
            .retry(retry)
            .map_response(|r: Response<hyper::body::Incoming>| {
                r.map(|b| {
                    Box::new(http_body_util::BodyExt::map_err(b, BoxError::from)) as Box<DynBody>
                })
            })
            .layer(config.base_uri_layer())
            .option_layer(config.default_retry.then(|| {
                tower::retry::RetryLayer::new(kube::client::retry::RetryPolicy::server_retry())
            }))
            .option_layer(config.auth_layer()?)
            .layer(config.extra_headers_layer()?)
            .map_err(BoxError::from)
            .service(http);
        Ok(Some(service.boxed()))
    }
}
