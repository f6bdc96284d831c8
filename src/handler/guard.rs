//! The entry checks every client request meets before the stages (`crate::access` decides,
//! this file acts): proxy auth and the client-address rule, the destination rule, hop-by-hop
//! headers, and the two ways out hudsucker would otherwise take by itself with system DNS and
//! no egress proxy: IP-literal CONNECTs (decided here by peeking at the ClientHello) and
//! protocol upgrades (WebSocket), which are relayed here through the upstream connector.

use std::net::SocketAddr;
use std::time::Duration;

use http::header::{HOST, PROXY_AUTHENTICATE, RETRY_AFTER};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hudsucker::{Body, RequestOrResponse};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{PotHandler, text_response};
use crate::access::{Entry, REALM, REENTRY_HEADER, Refusal, is_upgrade, strip_hop_by_hop};
use crate::intercept::{is_ip_literal, split_authority};

/// How long a client may take to send the first bytes of an IP-literal tunnel.
const PEEK_TIMEOUT: Duration = Duration::from_secs(30);
/// A ClientHello larger than this is not one (post-quantum key shares stay well below).
const PEEK_CAP: usize = 64 * 1024;

/// The authority a CONNECT handed to hudsucker carries instead of its own. hudsucker dials the
/// CONNECT's authority itself, with system DNS and no egress proxy, when the first bytes are
/// neither TLS nor HTTP; port 0 cannot be connected to, so that fallback fails at once. The
/// requests hudsucker reads inside the tunnel get the real authority back in `guard`.
const SEALED: &str = "0.0.0.0:0";

/// What the first bytes of an IP-literal tunnel said.
#[derive(Debug, PartialEq, Eq)]
enum Peeked {
    /// A TLS ClientHello naming this server.
    Tls(Option<String>),
    /// Anything else.
    Other,
}

fn refusal_response(r: Refusal) -> Response<Body> {
    text_response(StatusCode::FORBIDDEN, r.text().to_string())
}

impl PotHandler {
    /// The entry check: `Some(response)` refuses the request. Marks a checked CONNECT so the
    /// requests hudsucker later reads inside that tunnel (on clones of this handler) are not
    /// asked for credentials they cannot carry.
    pub(super) fn guard(
        &mut self,
        peer: SocketAddr,
        req: &mut Request<Body>,
    ) -> Option<Response<Body>> {
        let gate = &self.shared.gate;
        if req.method() == Method::CONNECT && gate.is_reentry(peer.ip(), req.headers()) {
            req.headers_mut().remove(REENTRY_HEADER);
            self.checked_tunnel = true;
            self.connect_authority = req.uri().authority().map(|a| a.to_string());
            return None;
        }
        if !self.checked_tunnel {
            match gate.entry(peer.ip(), req.headers()) {
                Entry::Allowed => {}
                Entry::ForeignClient => {
                    tracing::warn!(%peer, "refused a client outside loopback and private networks (no [auth] configured)");
                    return Some(text_response(
                        StatusCode::FORBIDDEN,
                        "potproxy: clients outside loopback and private networks need [auth]\n"
                            .into(),
                    ));
                }
                Entry::NeedsAuth => {
                    let mut res = text_response(
                        StatusCode::PROXY_AUTHENTICATION_REQUIRED,
                        "potproxy: proxy authentication required\n".into(),
                    );
                    res.headers_mut().insert(
                        PROXY_AUTHENTICATE,
                        HeaderValue::from_str(&format!("Basic realm=\"{REALM}\""))
                            .expect("static header value"),
                    );
                    return Some(res);
                }
                Entry::BackedOff { retry_after } => {
                    let mut res = text_response(
                        StatusCode::TOO_MANY_REQUESTS,
                        "potproxy: too many failed proxy logins from this address; retry later\n"
                            .into(),
                    );
                    res.headers_mut().insert(
                        RETRY_AFTER,
                        HeaderValue::from(retry_after.as_secs_f64().ceil().max(1.0) as u64),
                    );
                    return Some(res);
                }
            }
        }
        if req.method() == Method::CONNECT {
            self.checked_tunnel = true;
            self.connect_authority = req.uri().authority().map(|a| a.to_string());
            return None;
        }
        if req.uri().authority().is_some_and(|a| a.as_str() == SEALED) {
            self.unseal(req);
        }
        let upgrading = is_upgrade(req.headers());
        strip_hop_by_hop(req.headers_mut(), upgrading);
        // Inside a checked tunnel, HTTP/1 requests carry the CONNECT's own authority (checked
        // already); anything else (absolute-form, HTTP/2 `:authority`) is checked here.
        let authority = req.uri().authority().map(|a| a.as_str().to_string());
        if let Some(a) = authority.filter(|a| Some(a) != self.connect_authority.as_ref()) {
            let default = if req.uri().scheme_str() == Some("https") {
                443
            } else {
                80
            };
            let (host, port) = split_authority(&a, default);
            if let Err(r) = self.check_destination(host, port) {
                return Some(refusal_response(r));
            }
        }
        None
    }

    /// A CONNECT for hudsucker to intercept, its authority replaced by [`SEALED`] (the real one
    /// is in `connect_authority`, kept by `guard`).
    pub(super) fn sealed(mut req: Request<Body>) -> Request<Body> {
        let mut parts = req.uri().clone().into_parts();
        parts.authority = Some(http::uri::Authority::from_static(SEALED));
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
        req
    }

    /// Puts the CONNECT's own authority back into a request read inside a sealed tunnel.
    fn unseal(&self, req: &mut Request<Body>) {
        let Some(real) = self
            .connect_authority
            .as_deref()
            .and_then(|a| a.parse::<http::uri::Authority>().ok())
        else {
            return;
        };
        let mut parts = req.uri().clone().into_parts();
        parts.authority = Some(real);
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }

    /// The destination rule for `host:port` as the client wrote it; names with an
    /// `[upstream] resolve` override go where the operator said.
    pub(super) fn check_destination(&self, host: &str, port: u16) -> Result<(), Refusal> {
        let host = host.trim_matches(|c| c == '[' || c == ']');
        if self.shared.resolver.lookup(host).is_some() {
            return Ok(());
        }
        self.shared.gate.destinations.check(host, port)
    }

    /// After a direct dial of a name: the address it resolved to must pass the rule too (a
    /// name pointing at 127.0.0.1 is no way around it).
    pub(super) fn check_dialled(&self, host: &str, server: &TcpStream) -> Result<(), Refusal> {
        if self.shared.resolver.lookup(host).is_some()
            || !matches!(
                self.shared.resolver.egress(),
                crate::upstream::Egress::Direct
            )
        {
            return Ok(());
        }
        match server.peer_addr() {
            Ok(addr) => self.shared.gate.destinations.check_addr(addr),
            Err(_) => Ok(()),
        }
    }

    /// A CONNECT to an IP literal. hudsucker would read the ClientHello and, for an SNI it does
    /// not intercept (or non-TLS bytes), dial the IP itself with no egress proxy. Here, on port
    /// 443, the first bytes are read first (other ports are plain tunnels): an intercepted SNI is handed back to this proxy as a CONNECT by
    /// name (so the IP itself is never dialled), anything else is tunnelled through the
    /// resolver and egress like a named tunnel. A refused IP gets a 403, except on port 443
    /// where a TLS client may name an intercepted host; the IP is then never dialled.
    pub(super) async fn on_ip_connect(
        &self,
        mut req: Request<Body>,
        authority: String,
    ) -> RequestOrResponse {
        let (host, port) = split_authority(&authority, 443);
        let (host, port) = (host.to_string(), port);
        let refused = self.check_destination(&host, port).err();
        if let Some(r) = refused.filter(|_| port != 443) {
            return RequestOrResponse::Response(refusal_response(r));
        }
        if port != 443 {
            // Nothing potproxy intercepts is reached by IP on another port: a plain tunnel,
            // dialled first so servers that speak first (SSH) work.
            return self.tunnel_now(req, &host, port, authority).await;
        }
        let upgrade = hyper::upgrade::on(&mut req);
        let this = self.clone();
        tokio::spawn(async move {
            let upgraded = match upgrade.await {
                Ok(u) => u,
                Err(e) => {
                    tracing::debug!(%authority, error = %e, "tunnel: client upgrade failed");
                    return;
                }
            };
            let mut client = TokioIo::new(upgraded);
            let (peeked, first) = match tokio::time::timeout(PEEK_TIMEOUT, peek(&mut client)).await
            {
                Ok(Ok(x)) => x,
                _ => return,
            };
            let result = match peeked {
                Peeked::Tls(Some(sni))
                    if this.shared.policy.is_intercepted(&sni) && !is_ip_literal(&sni) =>
                {
                    this.reenter(&sni, port, &first, &mut client).await
                }
                _ if refused.is_some() => {
                    tracing::info!(%authority, "tunnel refused: loopback or own destination");
                    return;
                }
                _ => match this.shared.resolver.dial(&host, port).await {
                    Ok(mut server) => {
                        if let Err(r) = this.check_dialled(&host, &server) {
                            tracing::info!(%authority, refusal = ?r, "tunnel refused");
                            return;
                        }
                        match server.write_all(&first).await {
                            Ok(()) => crate::limits::relay(&mut client, &mut server)
                                .await
                                .map(|_| ()),
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = result {
                tracing::debug!(%authority, error = %e, "tunnel closed with error");
            }
        });
        RequestOrResponse::Response(
            Response::builder()
                .status(StatusCode::OK)
                .body(Body::empty())
                .expect("static response parts are valid"),
        )
    }

    /// A blind tunnel to `host:port` through the resolver and egress, dialled before the 200.
    async fn tunnel_now(
        &self,
        mut req: Request<Body>,
        host: &str,
        port: u16,
        authority: String,
    ) -> RequestOrResponse {
        let mut server = match self.shared.resolver.dial(host, port).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%authority, error = %e, "tunnel: cannot reach upstream");
                return RequestOrResponse::Response(text_response(
                    StatusCode::BAD_GATEWAY,
                    format!("potproxy: cannot connect to {authority}\n"),
                ));
            }
        };
        if let Err(r) = self.check_dialled(host, &server) {
            return RequestOrResponse::Response(refusal_response(r));
        }
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            match upgrade.await {
                Ok(upgraded) => {
                    let mut client = TokioIo::new(upgraded);
                    if let Err(e) = crate::limits::relay(&mut client, &mut server).await {
                        tracing::debug!(%authority, error = %e, "tunnel closed with error");
                    }
                }
                Err(e) => tracing::debug!(%authority, error = %e, "tunnel: client upgrade failed"),
            }
        });
        RequestOrResponse::Response(
            Response::builder()
                .status(StatusCode::OK)
                .body(Body::empty())
                .expect("static response parts are valid"),
        )
    }

    /// Hands a tunnel back to this proxy as `CONNECT name:port`, where hudsucker intercepts it.
    async fn reenter(
        &self,
        name: &str,
        port: u16,
        first: &[u8],
        client: &mut TokioIo<hyper::upgrade::Upgraded>,
    ) -> std::io::Result<()> {
        let addr = self
            .shared
            .gate
            .proxy_addr()
            .ok_or_else(|| std::io::Error::other("proxy address not known yet"))?;
        let mut own = TcpStream::connect(addr).await?;
        own.set_nodelay(true)?;
        let head = format!(
            "CONNECT {name}:{port} HTTP/1.1\r\nHost: {name}:{port}\r\n{REENTRY_HEADER}: {}\r\n\r\n",
            self.shared.gate.reentry_secret()
        );
        own.write_all(head.as_bytes()).await?;
        let mut reply = Vec::new();
        let mut b = [0u8; 1];
        while !reply.ends_with(b"\r\n\r\n") {
            if own.read(&mut b).await? == 0 || reply.len() > 4096 {
                return Err(std::io::Error::other("own proxy closed the re-entry"));
            }
            reply.push(b[0]);
        }
        if !reply.starts_with(b"HTTP/1.1 200") {
            return Err(std::io::Error::other("own proxy refused the re-entry"));
        }
        own.write_all(first).await?;
        crate::limits::relay(client, &mut own).await.map(|_| ())
    }

    /// A protocol upgrade (WebSocket): relayed here through the upstream connector (overrides,
    /// egress proxy, verified TLS), never by hudsucker's own direct dial.
    pub(super) async fn on_upgrade(&self, mut req: Request<Body>) -> RequestOrResponse {
        match self.relay_upgrade(&mut req).await {
            Ok(res) => RequestOrResponse::Response(res),
            Err(e) => {
                tracing::warn!(error = %e, "upgrade: cannot reach upstream");
                RequestOrResponse::Response(text_response(
                    StatusCode::BAD_GATEWAY,
                    "potproxy: upstream upgrade failed\n".into(),
                ))
            }
        }
    }

    async fn relay_upgrade(
        &self,
        req: &mut Request<Body>,
    ) -> Result<Response<Body>, Box<dyn std::error::Error + Send + Sync>> {
        use tower_service::Service;
        let uri = req.uri().clone();
        let host = uri
            .host()
            .ok_or("upgrade request without a host")?
            .to_string();
        let mut connector = self.shared.upgrades.clone();
        let io = connector.call(uri.clone()).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let client_upgrade = hyper::upgrade::on(&mut *req);
        let mut out = Request::builder()
            .method(req.method().clone())
            .uri(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
        for (k, v) in req.headers() {
            if k != HOST {
                out = out.header(k, v);
            }
        }
        let host_header = match uri.port_u16() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let out = out
            .header(HOST, host_header)
            .body(std::mem::replace(req.body_mut(), Body::empty()))?;
        let mut res = sender.send_request(out).await?;
        if res.status() == StatusCode::SWITCHING_PROTOCOLS {
            let server_upgrade = hyper::upgrade::on(&mut res);
            tokio::spawn(async move {
                if let (Ok(c), Ok(s)) = (client_upgrade.await, server_upgrade.await) {
                    let _ = crate::limits::relay(&mut TokioIo::new(c), &mut TokioIo::new(s)).await;
                }
            });
        }
        Ok(res.map(Body::from))
    }

    /// Whether this request is an upgrade hudsucker would relay itself.
    pub(super) fn wants_upgrade(req: &Request<Body>) -> bool {
        req.method() != Method::CONNECT && is_upgrade(req.headers())
    }
}

/// Reads the start of a tunnel: a whole ClientHello (its SNI), or the first bytes of anything
/// else. Returns what it read, to be replayed to whichever side gets the tunnel.
async fn peek<R: tokio::io::AsyncRead + Unpin>(io: &mut R) -> std::io::Result<(Peeked, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut acceptor = rustls::server::Acceptor::default();
    loop {
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf[0] != 0x16 {
            return Ok((Peeked::Other, buf));
        }
        let mut rd = &chunk[..n];
        while !rd.is_empty() {
            if acceptor.read_tls(&mut rd).is_err() {
                return Ok((Peeked::Other, buf));
            }
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                let sni = accepted
                    .client_hello()
                    .server_name()
                    .map(|s| s.to_ascii_lowercase());
                return Ok((Peeked::Tls(sni), buf));
            }
            Ok(None) if buf.len() < PEEK_CAP => continue,
            _ => return Ok((Peeked::Other, buf)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_hello_yields_its_sni_and_every_byte_read() {
        let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let mut conn = rustls::ClientConnection::new(
            std::sync::Arc::new(cfg),
            "www.youtube.com".try_into().unwrap(),
        )
        .unwrap();
        let mut hello = Vec::new();
        conn.write_tls(&mut hello).unwrap();
        let mut rd = &hello[..];
        let (p, first) = peek(&mut rd).await.unwrap();
        assert_eq!(p, Peeked::Tls(Some("www.youtube.com".into())));
        assert_eq!(first, hello);
        let mut ssh = &b"SSH-2.0-x\r\n"[..];
        assert_eq!(peek(&mut ssh).await.unwrap().0, Peeked::Other);
    }
}
