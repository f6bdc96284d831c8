//! Dialling: host overrides (`[upstream] resolve`), the upstream TLS trust store (public web
//! roots plus `[upstream] extra_ca_certs`, always verified), the HTTPS connector the MITM client
//! uses, and TCP dialling for blind tunnels, each through the configured [`Egress`].

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_rustls::HttpsConnector;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::net::TcpStream;

use super::tcp::TcpDialer;
use super::{CaFileError, Egress, UpstreamConfig, UpstreamError};
use crate::intercept::HostPattern;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Host -> address overrides, most specific pattern first.
#[derive(Debug, Clone)]
pub struct Resolver {
    overrides: Arc<Vec<(HostPattern, SocketAddr)>>,
    connect_timeout: Duration,
    egress: Egress,
    /// `SO_MARK` of every socket potproxy dials (`[transparent] mark`).
    mark: Option<u32>,
}

impl Resolver {
    pub fn new(cfg: &UpstreamConfig) -> Self {
        Resolver {
            overrides: Arc::new(cfg.resolve.clone()),
            connect_timeout: cfg.connect_timeout,
            egress: cfg.proxy.clone(),
            mark: cfg.mark,
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
        let mut http = TcpDialer {
            timeout: self.connect_timeout,
            mark: self.mark,
        };
        use tower_service::Service;
        match &self.egress {
            Egress::Direct => http.call(target).await.map_err(Into::into),
            Egress::Http { proxy, auth, .. } => {
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
                ..
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

/// Why [`Resolver::dial_checked`] made no connection.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// Every address the name stands for is refused by the destination rule; nothing was
    /// dialled.
    #[error("{}", .0.text().trim_end())]
    Refused(crate::access::Refusal),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Resolver {
    /// Whether `host` is dialled by potproxy itself (no override, no egress proxy), so its
    /// address is potproxy's to check. Overrides and egress proxies are the operator's choice.
    fn dials_directly(&self, host: &str) -> bool {
        matches!(self.egress, Egress::Direct) && self.lookup(host).is_none()
    }

    /// The addresses `host:port` stands for that `rule` allows: an IP literal as it is, a name
    /// resolved first (within the connect timeout). Refused when none is allowed.
    async fn checked_addrs(
        &self,
        host: &str,
        port: u16,
        rule: &crate::access::Destinations,
    ) -> Result<Vec<SocketAddr>, DialError> {
        rule.check(host, port).map_err(DialError::Refused)?;
        let resolved: Vec<SocketAddr> =
            tokio::time::timeout(self.connect_timeout, tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("resolving {host} timed out"),
                    )
                })??
                .collect();
        let mut refusal = None;
        let allowed: Vec<SocketAddr> = resolved
            .into_iter()
            .filter(|a| match rule.check_addr(*a) {
                Ok(()) => true,
                Err(r) => {
                    refusal = Some(r);
                    false
                }
            })
            .collect();
        match (allowed.is_empty(), refusal) {
            (true, Some(r)) => Err(DialError::Refused(r)),
            (true, None) => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{host} has no address"),
            )
            .into()),
            _ => Ok(allowed),
        }
    }

    /// [`Resolver::dial`] under the destination rule: a name potproxy dials itself is resolved,
    /// checked, and only an allowed address is connected to, so a refused destination never
    /// sees a connection attempt.
    pub async fn dial_checked(
        &self,
        host: &str,
        port: u16,
        rule: &crate::access::Destinations,
    ) -> Result<TcpStream, DialError> {
        let host = host.trim_matches(|c| c == '[' || c == ']');
        if !self.dials_directly(host) {
            return Ok(self.dial(host, port).await?);
        }
        let mut last = None;
        for addr in self.checked_addrs(host, port, rule).await? {
            match self.dial(&addr.ip().to_string(), addr.port()).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| std::io::Error::other(format!("cannot connect to {host}:{port}")))
            .into())
    }
}

/// A `Service<Uri>` that dials the override address for a host when one is configured and the
/// URI's own host otherwise, through the egress proxy when there is one. TLS (SNI,
/// certificate name) is layered on top by hyper-rustls from the *original* URI, so fakes must
/// present certificates for the real names.
#[derive(Clone)]
pub struct OverrideConnector {
    resolver: Resolver,
    /// The destination rule for names dialled directly (see [`connector_checked`]).
    check: Option<Arc<crate::access::Destinations>>,
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
        let check = self.check.clone();
        Box::pin(async move {
            let host = uri.host().ok_or("URI has no host")?.to_string();
            let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
                Some("http") => 80,
                _ => 443,
            });
            let bare = host.trim_matches(|c| c == '[' || c == ']');
            // A name the system resolves to a refused address (127.0.0.1, our own API) is
            // refused like the address itself, before anything is dialled.
            if let Some(check) = check.filter(|_| resolver.dials_directly(bare)) {
                let stream = resolver
                    .dial_checked(bare, port, &check)
                    .await
                    .map_err(|e| -> BoxError { e.to_string().into() })?;
                return Ok(TokioIo::new(stream));
            }
            let target = resolver.target(bare, port);
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
        let ca_file = |cause: CaFileError| UpstreamError::CaFile {
            path: path.display().to_string(),
            cause,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| ca_file(CaFileError::Pem(e)))?;
        if certs.is_empty() {
            return Err(ca_file(CaFileError::NoCertificate));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| ca_file(CaFileError::Rejected(e)))?;
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
    .map_err(UpstreamError::Tls)
    .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

/// The connector of potproxy's own requests ([`crate::upstream::HttpClient`]: re-issued media,
/// minting) leaving through `egress`: overrides, then TLS (h1, plus h2 when configured).
pub fn connector_via(
    cfg: &UpstreamConfig,
    egress: Egress,
) -> Result<UpstreamConnector, UpstreamError> {
    with_inner(
        cfg,
        OverrideConnector {
            resolver: Resolver::new(cfg).with_egress(egress),
            check: None,
        },
    )
}

/// The connector of the traffic potproxy forwards for its clients (the MITM client, relayed
/// upgrades): overrides and egress, then TLS, refusing names that resolve to a destination
/// `check` refuses before dialling them.
pub fn connector_checked(
    cfg: &UpstreamConfig,
    check: Arc<crate::access::Destinations>,
) -> Result<UpstreamConnector, UpstreamError> {
    with_inner(
        cfg,
        OverrideConnector {
            resolver: Resolver::new(cfg),
            check: Some(check),
        },
    )
}

fn with_inner(
    cfg: &UpstreamConfig,
    inner: OverrideConnector,
) -> Result<UpstreamConnector, UpstreamError> {
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
            mark: None,
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
