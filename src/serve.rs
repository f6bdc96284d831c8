//! The proxy listener's server: the accept loop and each client connection, from the first
//! byte to the last, with the limits of [`crate::limits`] applied — a bounded accept loop (back
//! off on errors, a connection cap with a 503), an idle clock on every client socket (before
//! the first request, between keep-alive requests, after CONNECT, inside TLS), a deadline on
//! upstream response headers, an idle clock on response bodies, idle-limited blind tunnels, and
//! a drain: on [`Drain::stop`] the listener closes, idle connections close, and in-flight
//! requests, tunnels and streams get the drain time to finish.
//!
//! This is hudsucker 0.25's `Proxy::start` and its internal connection handling (MIT OR
//! Apache-2.0, by Omer Ben-Amram and contributors), brought here because hudsucker serves a
//! concrete `TcpListener` with a loop that retries a failed accept at once (a process out of
//! descriptors spins at full CPU) and hands its socket to hyper unwrapped (no way to time out a
//! silent client after CONNECT). The request path is unchanged: every request goes through the
//! same [`HttpHandler`] calls in the same order, CONNECTs are intercepted or tunnelled by the
//! handler's `should_intercept_connect`/`should_intercept_tls` as before, and responses take
//! the same route back. WebSocket upgrades are relayed as bytes through the upstream client
//! (and so through its resolver and upstream proxy) instead of re-framed message by message.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONNECTION, COOKIE, HOST, UPGRADE};
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hudsucker::certificate_authority::CertificateAuthority;
use hudsucker::{Body, RequestOrResponse};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::Connect;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ServerBuilder;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::{LazyConfigAcceptor, StartHandshake};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::limits::{
    Activity, ClientConn, IdleBody, IdleIo, LogThrottle, Timeouts, accept_backoff, tunnel,
};
use crate::upstream::Resolver;

/// What the server knows about the client a request came from (hudsucker's `HttpContext`,
/// which cannot be built outside hudsucker).
#[derive(Clone, Debug, Eq, Hash, PartialEq)]
pub struct HttpContext {
    /// Address of the client that is sending the request.
    pub client_addr: SocketAddr,
}

/// The request hook, with hudsucker's `HttpHandler` methods and defaults. Each
/// request/response pair is passed to the same clone of the handler.
pub trait HttpHandler: Clone + Send + Sync + 'static {
    /// Each request: a (modified) request to forward, or a response for the client.
    fn handle_request(
        &mut self,
        _ctx: &HttpContext,
        req: Request<Body>,
    ) -> impl Future<Output = RequestOrResponse> + Send {
        async { req.into() }
    }

    /// Each upstream response, before it goes to the client.
    fn handle_response(
        &mut self,
        _ctx: &HttpContext,
        res: Response<Body>,
    ) -> impl Future<Output = Response<Body>> + Send {
        async { res }
    }

    /// A forwarded request that failed. Default: an empty 502.
    fn handle_error(
        &mut self,
        _ctx: &HttpContext,
        err: hyper_util::client::legacy::Error,
    ) -> impl Future<Output = Response<Body>> + Send {
        async move {
            tracing::warn!(error = %crate::errtext::error_chain(&err), "Failed to forward request");
            text_response(StatusCode::BAD_GATEWAY, String::new())
        }
    }

    /// Whether a CONNECT is intercepted (its first bytes read) rather than tunnelled.
    fn should_intercept_connect(
        &mut self,
        _ctx: &HttpContext,
        _req: &Request<Body>,
    ) -> impl Future<Output = bool> + Send {
        async { true }
    }

    /// Whether a TLS connection inside a CONNECT is decrypted rather than tunnelled.
    fn should_intercept_tls(
        &mut self,
        _ctx: &HttpContext,
        _client_hello: rustls::server::ClientHello<'_>,
    ) -> impl Future<Output = bool> + Send {
        async { true }
    }
}

/// Stops the server and waits for its work to finish.
#[derive(Clone, Default)]
pub struct Drain {
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl Drain {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops accepting; open connections finish their current request and close.
    pub fn stop(&self) {
        self.stop.cancel();
        self.tracker.close();
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Connections, tunnels and streams still running.
    pub fn in_flight(&self) -> usize {
        self.tracker.len()
    }

    /// Waits until everything in flight has finished, or `within` has passed; true when all
    /// finished.
    pub async fn wait(&self, within: Duration) -> bool {
        self.tracker.close();
        tokio::time::timeout(within, self.tracker.wait())
            .await
            .is_ok()
    }
}

/// Everything one client connection needs; shared by all of them.
pub struct ProxyServer<C, CA, H> {
    pub ca: Arc<CA>,
    pub client: Client<C, Body>,
    pub server: ServerBuilder<TokioExecutor>,
    pub handler: H,
    pub timeouts: Timeouts,
    pub max_connections: usize,
    pub drain: Drain,
    /// Dials blind tunnels (overrides and `[upstream] proxy` honoured, like every other
    /// upstream connection; hudsucker dialled these directly).
    pub resolver: Resolver,
}

/// How often a repeated accept failure or refusal is logged, at most.
const LOG_EVERY: Duration = Duration::from_secs(10);

impl<C, CA, H> ProxyServer<C, CA, H>
where
    C: Connect + Clone + Send + Sync + 'static,
    CA: CertificateAuthority,
    H: HttpHandler,
{
    /// Accepts and serves connections until [`Drain::stop`].
    pub async fn run(self: Arc<Self>, listener: TcpListener) {
        let slots = Arc::new(Semaphore::new(self.max_connections));
        let mut failures = 0u32;
        let mut accept_log = LogThrottle::new(LOG_EVERY);
        let mut refuse_log = LogThrottle::new(LOG_EVERY);
        loop {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                _ = self.drain.stop.cancelled() => break,
            };
            let (tcp, client_addr) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors (or memory) the listener stays readable: retrying at
                    // once would spin. Wait for connections to close.
                    failures = failures.saturating_add(1);
                    if let Some(held) = accept_log.allow(Instant::now()) {
                        tracing::warn!(error = %e, repeated = held, "cannot accept connections; backing off");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(accept_backoff(failures)) => continue,
                        _ = self.drain.stop.cancelled() => break,
                    }
                }
            };
            failures = 0;
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                if let Some(held) = refuse_log.allow(Instant::now()) {
                    tracing::warn!(
                        limit = self.max_connections,
                        refused_since_last = held,
                        "connection refused: limits.max_connections reached"
                    );
                }
                refuse(tcp, self.max_connections);
                continue;
            };
            let this = self.clone();
            self.drain.tracker.spawn(async move {
                this.serve_client(tcp, client_addr).await;
                drop(slot);
            });
        }
        tracing::info!("proxy listener closed");
    }

    async fn serve_client(self: Arc<Self>, tcp: TcpStream, client_addr: SocketAddr) {
        let activity = Activity::new(self.timeouts.client_idle);
        let conn = ClientConn {
            activity: activity.clone(),
            tunnel_idle: self.timeouts.tunnel_idle,
            tasks: self.drain.tracker.clone(),
        };
        let io = TokioIo::new(IdleIo::new(tcp, activity));
        let this = self.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            this.clone().proxy(req, client_addr, conn.clone(), None)
        });
        let served = self.server.serve_connection_with_upgrades(io, service);
        let mut served = std::pin::pin!(served);
        let result = tokio::select! {
            r = served.as_mut() => r,
            _ = self.drain.stop.cancelled() => {
                served.as_mut().graceful_shutdown();
                served.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%client_addr, error = %crate::errtext::error_chain(e.as_ref()), "client connection ended with an error");
        }
    }

    /// `tunnel`: for a request read inside a CONNECT, the handler clone that saw the CONNECT
    /// (as in hudsucker, it carries what the handler learned there, e.g. that the tunnel
    /// passed the entry checks); each request gets a fresh clone of it.
    async fn proxy(
        self: Arc<Self>,
        req: Request<Incoming>,
        client_addr: SocketAddr,
        conn: ClientConn,
        tunnel: Option<H>,
    ) -> Result<Response<Body>, Infallible> {
        // The client is not idle while it waits for this response; the upstream clocks (and a
        // client that stops reading) still bound it.
        let busy = conn.activity.begin_request();
        // Each response counts as work in flight until its body is done: a drain waits for
        // it, and the memory hand-back sees HTTP/2 streams, not only connections.
        let tracked = self.drain.tracker.token();
        let idle = self.timeouts.upstream_idle;
        let res = self.exchange(req, client_addr, conn, tunnel).await;
        // Bodies the handler made from other upstream streams get the same clock.
        Ok(res.map(|b| {
            Body::from(
                IdleBody::new(b, idle)
                    .holding(busy)
                    .tracked(tracked)
                    .boxed(),
            )
        }))
    }

    /// One request: the handler, then upstream (or the handler's own answer), then the handler
    /// on the way back.
    async fn exchange(
        self: Arc<Self>,
        req: Request<Incoming>,
        client_addr: SocketAddr,
        conn: ClientConn,
        tunnel: Option<H>,
    ) -> Response<Body> {
        let ctx = HttpContext { client_addr };
        let mut req = req.map(Body::from);
        req.extensions_mut().insert(conn.clone());
        let mut handler = tunnel.unwrap_or_else(|| self.handler.clone());
        let req = match handler.handle_request(&ctx, req).await {
            RequestOrResponse::Request(req) => req,
            RequestOrResponse::Response(res) => return res,
        };

        if req.method() == Method::CONNECT {
            return self.process_connect(handler, ctx, conn, req);
        }
        if is_upgrade_request(&req) {
            return self.relay_upgrade(req).await;
        }
        let sent = tokio::time::timeout(
            self.timeouts.upstream_headers,
            self.client.request(normalize_request(req)),
        )
        .await;
        let res = match sent {
            Ok(Ok(res)) => res,
            Ok(Err(e)) => return handler.handle_error(&ctx, e).await,
            Err(_) => return self.headers_timed_out(),
        };
        // The clock also bounds what the handler reads of the body itself.
        let idle = self.timeouts.upstream_idle;
        let res = res.map(|b| Body::from(IdleBody::new(Body::from(b), idle).boxed()));
        handler.handle_response(&ctx, res).await
    }

    fn headers_timed_out(&self) -> Response<Body> {
        let secs = self.timeouts.upstream_headers.as_secs();
        tracing::warn!(
            after_secs = secs,
            "upstream sent no response headers in time (timeouts.upstream_headers_secs)"
        );
        text_response(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "potproxy: upstream sent no response headers within {secs}s (timeouts.upstream_headers_secs)\n"
            ),
        )
    }

    /// A WebSocket (or other) upgrade: forwarded through the upstream client; on `101` both
    /// upgraded connections are joined as a byte tunnel.
    async fn relay_upgrade(self: Arc<Self>, mut req: Request<Body>) -> Response<Body> {
        let client_side = hyper::upgrade::on(&mut req);
        let mut req = normalize_request(req);
        // `normalize_request` keeps Connection/Upgrade: the origin must see them.
        req.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("upgrade"));
        let sent =
            tokio::time::timeout(self.timeouts.upstream_headers, self.client.request(req)).await;
        let mut res = match sent {
            Ok(Ok(res)) => res,
            Ok(Err(e)) => {
                let chain = crate::errtext::error_chain(&e);
                tracing::warn!(error = %chain, "upgrade request failed");
                return text_response(
                    StatusCode::BAD_GATEWAY,
                    format!("potproxy: upstream request failed: {chain}\n"),
                );
            }
            Err(_) => return self.headers_timed_out(),
        };
        if res.status() == StatusCode::SWITCHING_PROTOCOLS {
            let server_side = hyper::upgrade::on(&mut res);
            let idle = self.timeouts.tunnel_idle;
            self.drain.tracker.spawn(async move {
                match futures::future::try_join(client_side, server_side).await {
                    Ok((c, s)) => {
                        if let Err(e) = tunnel(TokioIo::new(c), TokioIo::new(s), idle).await {
                            tracing::debug!(error = %e, "upgraded connection closed with an error");
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "upgrade failed"),
                }
            });
        }
        res.map(Body::from)
    }

    /// A CONNECT the handler let through: read the first bytes, then serve HTTP, decrypt TLS
    /// with a leaf from the CA, or tunnel blind — as the handler decides.
    fn process_connect(
        self: Arc<Self>,
        mut handler: H,
        ctx: HttpContext,
        conn: ClientConn,
        mut req: Request<Body>,
    ) -> Response<Body> {
        let Some(authority) = req.uri().authority().cloned() else {
            return text_response(StatusCode::BAD_REQUEST, String::new());
        };
        let upgrade = hyper::upgrade::on(&mut req);
        let this = self.clone();
        self.drain.tracker.spawn(async move {
            let upgraded = match upgrade.await {
                Ok(u) => u,
                Err(e) => {
                    tracing::debug!(%authority, error = %e, "CONNECT: client upgrade failed");
                    return;
                }
            };
            let mut upgraded = TokioIo::new(upgraded);
            let mut buffer = [0u8; 4];
            // The client socket's idle clock bounds this wait for the first bytes.
            let n = match upgraded.read(&mut buffer).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!(%authority, error = %e, "CONNECT: no bytes from the client");
                    return;
                }
            };
            let upgraded = Rewind::new(buffer[..n].to_vec(), upgraded);
            if handler.should_intercept_connect(&ctx, &req).await {
                if buffer == *b"GET " {
                    if let Err(e) = this
                        .serve_stream(
                            TokioIo::new(upgraded),
                            Scheme::HTTP,
                            authority,
                            ctx,
                            conn,
                            handler.clone(),
                        )
                        .await
                    {
                        tracing::debug!(error = %e, "plain connection inside CONNECT ended with an error");
                    }
                    return;
                }
                if n >= 2 && buffer[..2] == *b"\x16\x03" {
                    let tee = Tee::new(upgraded);
                    let start = match LazyConfigAcceptor::new(
                        rustls::server::Acceptor::default(),
                        tee,
                    )
                    .await
                    {
                        Ok(start) => start,
                        Err(e) => {
                            tracing::debug!(%authority, error = %e, "CONNECT: cannot read the TLS client hello");
                            return;
                        }
                    };
                    if !handler
                        .should_intercept_tls(&ctx, start.client_hello())
                        .await
                    {
                        this.tunnel_to(start.io.rewind(), &authority, &conn).await;
                        return;
                    }
                    let sni_authority = start
                        .client_hello()
                        .server_name()
                        .and_then(|name| Authority::try_from(name).ok());
                    let server_config = this
                        .ca
                        .gen_server_config(sni_authority.as_ref().unwrap_or(&authority))
                        .await;
                    let stream = match StartHandshake::from_parts(
                        start.accepted,
                        start.io.into_inner(),
                    )
                    .into_stream(server_config)
                    .await
                    {
                        Ok(stream) => TokioIo::new(stream),
                        Err(e) => {
                            tracing::debug!(%authority, error = %e, "CONNECT: TLS handshake with the client failed");
                            return;
                        }
                    };
                    if let Err(e) = this
                        .serve_stream(stream, Scheme::HTTPS, authority, ctx, conn, handler.clone())
                        .await
                    {
                        tracing::debug!(error = %crate::errtext::error_chain(e.as_ref()), "TLS connection inside CONNECT ended with an error");
                    }
                    return;
                }
                tracing::warn!(
                    "Unknown protocol, read '{:02X?}' from upgraded connection",
                    &buffer[..n]
                );
            }
            this.tunnel_to(upgraded, &authority, &conn).await;
        });
        Response::new(Body::empty())
    }

    /// Blind tunnel from the client to `authority`, closed when silent for `tunnel_idle_secs`.
    async fn tunnel_to<I>(&self, client: I, authority: &Authority, conn: &ClientConn)
    where
        I: AsyncRead + AsyncWrite + Unpin,
    {
        let idle = conn.into_tunnel();
        let host = authority.host().trim_matches(|c| c == '[' || c == ']');
        let port = authority.port_u16().unwrap_or(443);
        let server = match self.resolver.dial(host, port).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%authority, error = %e, "tunnel: cannot connect");
                return;
            }
        };
        if let Err(e) = tunnel(client, server, idle).await {
            tracing::debug!(%authority, error = %e, "tunnel closed with an error");
        }
    }

    /// Serves HTTP on a connection inside a CONNECT (plain or decrypted TLS).
    async fn serve_stream<I>(
        self: Arc<Self>,
        stream: I,
        scheme: Scheme,
        authority: Authority,
        ctx: HttpContext,
        conn: ClientConn,
        handler: H,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let this = self.clone();
        let client_addr = ctx.client_addr;
        let service = service_fn(move |mut req: Request<Incoming>| {
            if req.version() == hyper::Version::HTTP_10 || req.version() == hyper::Version::HTTP_11
            {
                let (mut parts, body) = req.into_parts();
                let mut uri = parts.uri.into_parts();
                uri.scheme = Some(scheme.clone());
                uri.authority = Some(authority.clone());
                parts.uri = Uri::from_parts(uri).expect("scheme, authority and path make a URI");
                req = Request::from_parts(parts, body);
            }
            this.clone()
                .proxy(req, client_addr, conn.clone(), Some(handler.clone()))
        });
        let served = self.server.serve_connection_with_upgrades(stream, service);
        let mut served = std::pin::pin!(served);
        tokio::select! {
            r = served.as_mut() => r,
            _ = self.drain.stop.cancelled() => {
                served.as_mut().graceful_shutdown();
                served.await
            }
        }
    }
}

/// Over the cap: a short 503 (best effort, never waiting on the client) and close.
fn refuse(tcp: TcpStream, limit: usize) {
    let text = format!("potproxy: too many connections (limits.max_connections = {limit})\n");
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n{text}",
        text.len()
    );
    let _ = tcp.try_write(head.as_bytes());
}

/// A short plain-text answer of the proxy's own.
pub(crate) fn text_response(status: StatusCode, text: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(text))
        .expect("static response parts are valid")
}

fn is_upgrade_request<B>(req: &Request<B>) -> bool {
    let has_token = |name, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    has_token(CONNECTION, "upgrade") && has_token(UPGRADE, "websocket")
}

/// As hudsucker: hyper sets Host from the URI; HTTP/2 may split cookies, HTTP/1 may not.
fn normalize_request<T>(mut req: Request<T>) -> Request<T> {
    req.headers_mut().remove(HOST);
    let cookies: Vec<HeaderValue> = req.headers().get_all(COOKIE).iter().cloned().collect();
    if cookies.len() > 1 {
        let joined = cookies
            .iter()
            .map(|c| c.as_bytes())
            .collect::<Vec<_>>()
            .join(&b"; "[..]);
        if let Ok(v) = HeaderValue::from_bytes(&joined) {
            req.headers_mut().insert(COOKIE, v);
        }
    }
    *req.version_mut() = hyper::Version::HTTP_11;
    req
}

/// Bytes already read, served again before the rest of the stream.
struct Rewind<U> {
    prefix: Bytes,
    inner: U,
}

impl<U> Rewind<U> {
    fn new(prefix: Vec<u8>, inner: U) -> Self {
        Rewind {
            prefix: Bytes::from(prefix),
            inner,
        }
    }
}

impl<U: AsyncRead + Unpin> AsyncRead for Rewind<U> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let head = self.prefix.split_to(n);
            buf.put_slice(&head);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<U: AsyncWrite + Unpin> AsyncWrite for Rewind<U> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Records what is read (the TLS client hello), so a connection that is not intercepted can be
/// tunnelled from its first byte.
struct Tee<T> {
    seen: Vec<u8>,
    inner: T,
}

impl<T> Tee<T> {
    fn new(inner: T) -> Self {
        Tee {
            seen: Vec::new(),
            inner,
        }
    }
    fn into_inner(self) -> T {
        self.inner
    }
    fn rewind(self) -> Rewind<T> {
        Rewind::new(self.seen, self.inner)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tee<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if res.is_ready() {
            let new = buf.filled()[before..].to_vec();
            self.seen.extend_from_slice(&new);
        }
        res
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tee<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_joined_and_host_dropped() {
        let req = Request::builder()
            .uri("http://example.com/")
            .header(HOST, "example.com")
            .header(COOKIE, "a=1")
            .header(COOKIE, "b=2")
            .body(())
            .unwrap();
        let req = normalize_request(req);
        assert!(req.headers().get(HOST).is_none());
        assert_eq!(req.headers().get(COOKIE).unwrap(), "a=1; b=2");
    }

    #[test]
    fn websocket_upgrade_is_recognised_among_connection_tokens() {
        let req = Request::builder()
            .header(CONNECTION, "keep-alive, Upgrade")
            .header(UPGRADE, "websocket")
            .body(())
            .unwrap();
        assert!(is_upgrade_request(&req));
        let plain = Request::builder().body(()).unwrap();
        assert!(!is_upgrade_request(&plain));
    }

    #[tokio::test]
    async fn rewind_serves_the_prefix_first() {
        let inner: &[u8] = b"world";
        let mut r = Rewind::new(b"hello ".to_vec(), inner);
        let mut out = String::new();
        r.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "hello world");
    }
}
