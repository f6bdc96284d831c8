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

/// How upstream connections leave: directly, or chained through the user's proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Egress {
    Direct,
    /// An HTTP proxy, reached with CONNECT.
    Http {
        proxy: Uri,
        auth: Option<String>,
    },
    /// A SOCKS5 proxy; `remote_dns` (socks5h) lets the proxy resolve names.
    Socks5 {
        proxy: Uri,
        auth: Option<(String, String)>,
        remote_dns: bool,
    },
}

impl Egress {
    /// Parses `http://[user:pass@]host:port` or `socks5[h]://[user:pass@]host:port`; a value
    /// without a scheme is taken as `http://` (as bgutil does).
    pub fn parse(text: &str) -> Result<Egress, String> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(Egress::Direct);
        }
        let with_scheme = if t.contains("://") {
            t.to_string()
        } else {
            format!("http://{t}")
        };
        let u = url::Url::parse(&with_scheme).map_err(|e| format!("not a proxy URL: {e}"))?;
        let host = u.host_str().ok_or("proxy URL has no host")?;
        let default_port = match u.scheme() {
            "http" => 80,
            "https" => 443,
            "socks5" | "socks5h" => 1080,
            other => {
                return Err(format!(
                    "unsupported proxy scheme `{other}` (http, socks5, socks5h)"
                ));
            }
        };
        let port = u.port().unwrap_or(default_port);
        let host_port = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let proxy: Uri = format!("http://{host_port}")
            .parse()
            .map_err(|e| format!("bad proxy address: {e}"))?;
        let user = percent_encoding::percent_decode_str(u.username())
            .decode_utf8_lossy()
            .into_owned();
        let pass = u.password().map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        });
        Ok(match u.scheme() {
            "http" | "https" => Egress::Http {
                proxy,
                auth: (!user.is_empty()).then(|| {
                    use base64::Engine;
                    let raw = format!("{user}:{}", pass.unwrap_or_default());
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(raw)
                    )
                }),
            },
            scheme => Egress::Socks5 {
                proxy,
                auth: (!user.is_empty()).then(|| (user, pass.unwrap_or_default())),
                remote_dns: scheme == "socks5h",
            },
        })
    }

    /// The cache key part for tokens minted through this egress (credentials left out).
    pub fn key(&self) -> Option<String> {
        match self {
            Egress::Direct => None,
            Egress::Http { proxy, .. } => Some(format!("http://{}", proxy.authority()?)),
            Egress::Socks5 {
                proxy, remote_dns, ..
            } => Some(format!(
                "{}://{}",
                if *remote_dns { "socks5h" } else { "socks5" },
                proxy.authority()?
            )),
        }
    }
}

/// Host -> address overrides, most specific pattern first.
#[derive(Debug, Clone)]
pub struct Resolver {
    overrides: Arc<Vec<(HostPattern, SocketAddr)>>,
    connect_timeout: Duration,
    egress: Egress,
}

impl Resolver {
    pub fn new(cfg: &UpstreamConfig) -> Self {
        Resolver {
            overrides: Arc::new(cfg.resolve.clone()),
            connect_timeout: cfg.connect_timeout,
            egress: cfg.proxy.clone(),
        }
    }

    /// The same overrides, leaving through `egress`.
    pub fn with_egress(&self, egress: Egress) -> Self {
        Resolver {
            egress,
            ..self.clone()
        }
    }

    pub fn egress(&self) -> &Egress {
        &self.egress
    }

    /// The override for `host`, if one is configured.
    pub fn lookup(&self, host: &str) -> Option<SocketAddr> {
        self.overrides
            .iter()
            .find(|(p, _)| p.matches(host))
            .map(|(_, a)| *a)
    }

    /// The connection target for `host:port`: its override, or the name itself. Through an
    /// egress proxy the name goes to the proxy unresolved: resolution is the proxy's job.
    fn target(&self, host: &str, port: u16) -> Uri {
        let overridden = match self.egress {
            Egress::Direct => self.lookup(host),
            _ => None,
        };
        let authority = match overridden {
            Some(addr) => addr.to_string(),
            None if host.contains(':') => format!("[{host}]:{port}"),
            None => format!("{host}:{port}"),
        };
        format!("http://{authority}/")
            .parse()
            .unwrap_or_else(|_| Uri::from_static("http://invalid/"))
    }

    async fn connect_uri(&self, target: Uri) -> Result<TokioIo<TcpStream>, BoxError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(self.connect_timeout));
        use tower_service::Service;
        match &self.egress {
            Egress::Direct => http.call(target).await.map_err(Into::into),
            Egress::Http { proxy, auth } => {
                let mut t =
                    hyper_util::client::legacy::connect::proxy::Tunnel::new(proxy.clone(), http);
                if let Some(a) = auth
                    .as_deref()
                    .and_then(|a| http::HeaderValue::from_str(a).ok())
                {
                    t = t.with_auth(a);
                }
                t.call(target).await.map_err(Into::into)
            }
            Egress::Socks5 {
                proxy,
                auth,
                remote_dns,
            } => {
                let mut s =
                    hyper_util::client::legacy::connect::proxy::SocksV5::new(proxy.clone(), http)
                        .local_dns(!remote_dns);
                if let Some((u, p)) = auth {
                    s = s.with_auth(u.clone(), p.clone());
                }
                s.call(target).await.map_err(Into::into)
            }
        }
    }

    /// Opens a TCP connection to `host:port` (honouring overrides and the egress proxy), within
    /// the connect timeout.
    pub async fn dial(&self, host: &str, port: u16) -> std::io::Result<TcpStream> {
        let timeout = self.connect_timeout;
        let target = self.target(host, port);
        let attempt = async {
            let io = self
                .connect_uri(target)
                .await
                .map_err(|e| std::io::Error::other(crate::errtext::error_chain(&*e)))?;
            let stream = io.into_inner();
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
/// URI's own host otherwise, through the egress proxy when there is one. TLS (SNI,
/// certificate name) is layered on top by hyper-rustls from the *original* URI, so fakes must
/// present certificates for the real names.
#[derive(Clone)]
pub struct OverrideConnector {
    resolver: Resolver,
}

impl tower_service::Service<Uri> for OverrideConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let resolver = self.resolver.clone();
        Box::pin(async move {
            let host = uri.host().ok_or("URI has no host")?.to_string();
            let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
                Some("http") => 80,
                _ => 443,
            });
            let target = resolver.target(host.trim_matches(|c| c == '[' || c == ']'), port);
            tokio::time::timeout(resolver.connect_timeout, resolver.connect_uri(target))
                .await
                .map_err(|_| -> BoxError { format!("connect to {host}:{port} timed out").into() })?
        })
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

/// The connector for the MITM client: overrides and egress, then TLS (h1, plus h2 when
/// configured).
pub fn connector(cfg: &UpstreamConfig) -> Result<UpstreamConnector, UpstreamError> {
    connector_via(cfg, cfg.proxy.clone())
}

/// The same connector leaving through `egress`.
pub fn connector_via(
    cfg: &UpstreamConfig,
    egress: Egress,
) -> Result<UpstreamConnector, UpstreamError> {
    let inner = OverrideConnector {
        resolver: Resolver::new(cfg).with_egress(egress),
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
            proxy: Egress::Direct,
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

    #[test]
    fn proxy_urls_parse_with_defaults_and_credentials() {
        assert_eq!(Egress::parse("").unwrap(), Egress::Direct);
        match Egress::parse("127.0.0.1:3128").unwrap() {
            Egress::Http { proxy, auth } => {
                assert_eq!(proxy.to_string(), "http://127.0.0.1:3128/");
                assert!(auth.is_none());
            }
            e => panic!("{e:?}"),
        }
        match Egress::parse("http://u%40x:p@proxy.example").unwrap() {
            Egress::Http { proxy, auth } => {
                assert_eq!(proxy.authority().unwrap().as_str(), "proxy.example:80");
                assert_eq!(auth.as_deref(), Some("Basic dUB4OnA="));
            }
            e => panic!("{e:?}"),
        }
        let s = Egress::parse("socks5h://a:b@127.0.0.1").unwrap();
        assert_eq!(s.key().as_deref(), Some("socks5h://127.0.0.1:1080"));
        assert!(Egress::parse("ftp://x").unwrap_err().contains("ftp"));
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
        Self::via(cfg, cfg.proxy.clone(), timeout)
    }

    /// A client whose connections leave through `egress`.
    pub fn via(
        cfg: &UpstreamConfig,
        egress: Egress,
        timeout: Duration,
    ) -> Result<Self, UpstreamError> {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .build(connector_via(cfg, egress)?);
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
