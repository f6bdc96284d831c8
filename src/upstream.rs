//! The proxy's way out: host overrides (`[upstream] resolve`), the upstream TLS trust store
//! (public web roots plus `[upstream] extra_ca_certs`, always verified), the HTTP connector the
//! MITM client uses, and TCP dialling for blind tunnels. Every upstream connection of the proxy
//! goes through here, so tests can point real host names at in-process fakes.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::net::TcpStream;

use crate::config::UpstreamConfig;
use crate::intercept::HostPattern;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("config key `upstream.extra_ca_certs` has invalid value `{path}`: {reason}")]
    CaFile { path: String, reason: String },
    #[error("upstream TLS setup failed: {0}")]
    Tls(String),
}

/// Host -> address overrides, most specific pattern first.
#[derive(Debug, Clone)]
pub struct Resolver {
    overrides: Arc<Vec<(HostPattern, SocketAddr)>>,
    connect_timeout: Duration,
}

impl Resolver {
    pub fn new(cfg: &UpstreamConfig) -> Self {
        Resolver {
            overrides: Arc::new(cfg.resolve.clone()),
            connect_timeout: cfg.connect_timeout,
        }
    }

    /// The override for `host`, if one is configured.
    pub fn lookup(&self, host: &str) -> Option<SocketAddr> {
        self.overrides
            .iter()
            .find(|(p, _)| p.matches(host))
            .map(|(_, a)| *a)
    }

    /// Opens a TCP connection to `host:port`, honouring overrides, within the connect timeout.
    pub async fn dial(&self, host: &str, port: u16) -> std::io::Result<TcpStream> {
        let timeout = self.connect_timeout;
        let attempt = async {
            let stream = match self.lookup(host) {
                Some(addr) => TcpStream::connect(addr).await?,
                None => TcpStream::connect((host, port)).await?,
            };
            stream.set_nodelay(true)?;
            Ok(stream)
        };
        tokio::time::timeout(timeout, attempt).await.map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("connect to {host}:{port} timed out after {timeout:?}"),
            )
        })?
    }
}

/// A `Service<Uri>` that dials the override address for a host when one is configured and the
/// URI's own host otherwise. TLS (SNI, certificate name) is layered on top by hyper-rustls from
/// the *original* URI, so fakes must present certificates for the real names.
#[derive(Clone)]
pub struct OverrideConnector {
    resolver: Resolver,
    inner: HttpConnector,
}

impl tower_service::Service<Uri> for OverrideConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let target = match uri.host().and_then(|h| self.resolver.lookup(h)) {
            Some(addr) => format!("http://{addr}/")
                .parse()
                .expect("socket address URI"),
            None => uri,
        };
        let fut = self.inner.call(target);
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}

pub type UpstreamConnector = HttpsConnector<OverrideConnector>;

/// Loads the public web roots plus every PEM certificate in `extra`.
pub fn root_store(extra: &[impl AsRef<Path>]) -> Result<RootCertStore, UpstreamError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for path in extra {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| UpstreamError::CaFile {
                path: shown.clone(),
                reason: e.to_string(),
            })?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| UpstreamError::CaFile {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(UpstreamError::CaFile {
                path: shown,
                reason: "no PEM certificate in file".into(),
            });
        }
        for cert in certs {
            roots.add(cert).map_err(|e| UpstreamError::CaFile {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
        }
    }
    Ok(roots)
}

/// The verified TLS client configuration used for every upstream connection.
pub fn client_tls_config(cfg: &UpstreamConfig) -> Result<rustls::ClientConfig, UpstreamError> {
    let roots = root_store(&cfg.extra_ca_certs)?;
    rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| UpstreamError::Tls(e.to_string()))
    .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

/// The connector for the MITM client: overrides, then TLS (h1, plus h2 when configured).
pub fn connector(cfg: &UpstreamConfig) -> Result<UpstreamConnector, UpstreamError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(cfg.connect_timeout));
    let inner = OverrideConnector {
        resolver: Resolver::new(cfg),
        inner: http,
    };
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(client_tls_config(cfg)?)
        .https_or_http()
        .enable_http1();
    Ok(if cfg.http2 {
        builder.enable_http2().wrap_connector(inner)
    } else {
        builder.wrap_connector(inner)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(entries: &[(&str, &str)]) -> UpstreamConfig {
        let mut resolve: Vec<_> = entries
            .iter()
            .map(|(h, a)| (HostPattern::parse(h).unwrap(), a.parse().unwrap()))
            .collect();
        resolve.sort_by_key(|(p, _)| p.specificity());
        UpstreamConfig {
            resolve,
            extra_ca_certs: vec![],
            connect_timeout: Duration::from_secs(1),
            http2: false,
        }
    }

    #[test]
    fn exact_override_beats_wildcard() {
        let r = Resolver::new(&cfg(&[
            ("*.googlevideo.com", "127.0.0.1:1"),
            ("rr1---sn-a.googlevideo.com", "127.0.0.1:2"),
        ]));
        assert_eq!(r.lookup("rr1---sn-a.googlevideo.com").unwrap().port(), 2);
        assert_eq!(r.lookup("rr9---sn-b.googlevideo.com").unwrap().port(), 1);
        assert_eq!(r.lookup("www.youtube.com"), None);
    }

    #[test]
    fn a_ca_file_without_certificates_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty.pem");
        std::fs::write(&p, "nothing here").unwrap();
        let e = root_store(&[&p]).unwrap_err().to_string();
        assert!(
            e.contains("upstream.extra_ca_certs") && e.contains("empty.pem"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn dialling_a_closed_port_fails_fast() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let r = Resolver::new(&cfg(&[]));
        assert!(r.dial("127.0.0.1", port).await.is_err());
    }
}

/// A small HTTP client for the proxy's own requests (challenges, GenerateIT, providers): the
/// same connector, overrides and trust store as user traffic, bodies read fully up to a cap.
#[derive(Clone)]
pub struct HttpClient {
    client:
        hyper_util::client::legacy::Client<UpstreamConnector, http_body_util::Full<bytes::Bytes>>,
    timeout: Duration,
}

/// A response read to the end.
#[derive(Debug, Clone)]
pub struct FetchedResponse {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("{method} {url}: {reason}")]
    Failed {
        method: http::Method,
        url: String,
        reason: String,
    },
    #[error("{method} {url}: no answer within {after:?}")]
    Timeout {
        method: http::Method,
        url: String,
        after: Duration,
    },
    #[error("{method} {url}: body over {limit} bytes")]
    TooLarge {
        method: http::Method,
        url: String,
        limit: usize,
    },
}

/// Largest body the proxy's own requests read (the YouTube home page is ~1.5 MB).
const FETCH_BODY_LIMIT: usize = 16 * 1024 * 1024;

impl HttpClient {
    pub fn new(cfg: &UpstreamConfig, timeout: Duration) -> Result<Self, UpstreamError> {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .build(connector(cfg)?);
        Ok(HttpClient { client, timeout })
    }

    /// Sends a bodiless request and returns the response as it streams (for re-issued media
    /// requests, whose bodies go straight to the client).
    pub async fn stream(
        &self,
        method: http::Method,
        uri: http::Uri,
        headers: http::HeaderMap,
    ) -> Result<http::Response<hyper::body::Incoming>, FetchError> {
        let url = uri.to_string();
        let mut req = http::Request::builder()
            .method(method.clone())
            .uri(uri)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .map_err(|e| FetchError::Failed {
                method: method.clone(),
                url: url.clone(),
                reason: e.to_string(),
            })?;
        *req.headers_mut() = headers;
        req.headers_mut().remove(http::header::HOST);
        tokio::time::timeout(self.timeout, self.client.request(req))
            .await
            .map_err(|_| FetchError::Timeout {
                method: method.clone(),
                url: url.clone(),
                after: self.timeout,
            })?
            .map_err(|e| FetchError::Failed {
                method,
                url,
                reason: crate::errtext::error_chain(&e),
            })
    }

    /// Sends a request and reads the whole response (up to 16 MiB).
    pub async fn send(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<FetchedResponse, FetchError> {
        use http_body_util::BodyExt;
        let failed = |reason: String| FetchError::Failed {
            method: method.clone(),
            url: url.to_string(),
            reason,
        };
        let mut req = http::Request::builder().method(method.clone()).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.unwrap_or_default(),
            )))
            .map_err(|e| failed(e.to_string()))?;
        let work = async {
            let res = self
                .client
                .request(req)
                .await
                .map_err(|e| failed(crate::errtext::error_chain(&e)))?;
            let (parts, body) = res.into_parts();
            let limited = http_body_util::Limited::new(body, FETCH_BODY_LIMIT);
            let body = limited.collect().await.map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    FetchError::TooLarge {
                        method: method.clone(),
                        url: url.to_string(),
                        limit: FETCH_BODY_LIMIT,
                    }
                } else {
                    failed(e.to_string())
                }
            })?;
            Ok(FetchedResponse {
                status: parts.status,
                headers: parts.headers,
                body: body.to_bytes(),
            })
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| FetchError::Timeout {
                method: method.clone(),
                url: url.to_string(),
                after: self.timeout,
            })?
    }
}
