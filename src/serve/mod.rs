//! The proxy listener's server, potproxy's front door: the accept loop and each client
//! connection from its first byte to its last. What every arrival is (a `CONNECT`, an upgrade,
//! a request) and what happens to it (refused, answered here, tunnelled blind, decrypted, or
//! handed to the request [`Hook`]) is decided in one place, [`door::decide`]; this module does
//! the I/O each answer asks for, under the limits of [`crate::limits`]: a bounded accept loop
//! (back off on errors, a connection cap with a 503), an idle clock on every client socket
//! (before the first request, between keep-alive requests, after `CONNECT`, inside TLS), a
//! deadline on upstream response headers, an idle clock on response bodies, and a drain: on
//! [`Drain::stop`] the listener closes, idle connections close, and in-flight requests, tunnels
//! and streams get the drain time to finish.
//!
//! ```text
//!  accept ─▶ connection ─▶ each request: door::decide
//!     RefuseClient / RefuseDestination ─▶ 407 / 403
//!     AnswerLocally ─────────────────────▶ the CA page
//!     CONNECT: TunnelNow ────────────────▶ tunnel::Tunnels (dial, then 200, relay)
//!              ReadFirstBytes ─▶ 200, sniff ─▶ decide again:
//!                  Decrypt{name} ─▶ TLS with a leaf from the CA ─▶ requests inside (loop)
//!                  ServeHttp ────▶ requests inside (loop)
//!                  TunnelAfterFirstBytes / Close
//!     Upgrade ─▶ handshake through the upstream connector, 101 ─▶ tunnel::Tunnels
//!     Forward ─▶ Hook::request ─▶ upstream ─▶ Hook::response (or Hook::failed)
//! ```
//!
//! The accept loop, the connection handling and [`Drain`] started as a port of hudsucker 0.25's
//! server (MIT OR Apache-2.0, by Omer Ben-Amram and contributors); hudsucker still provides the
//! body type and the CA's leaf generation.

mod connect;
pub mod door;
mod io;
mod socks;
pub mod transparent;
mod tunnel;
mod upgrade;

use std::future::Future;

use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{COOKIE, HOST, PROXY_AUTHENTICATE};
use http::uri::Authority;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hudsucker::certificate_authority::CertificateAuthority;
use hudsucker::{Body, RequestOrResponse};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::Connect;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ServerBuilder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::{Entry, Gate, REALM, Refusal, is_upgrade, strip_hop_by_hop};
use crate::intercept::{InterceptPolicy, is_acceptable_host, is_ip_literal, split_authority};
use crate::limits::{
    Activity, ClientConn, IdleBody, IdleIo, LogThrottle, Timeouts, accept_backoff,
};
use crate::observe::ca_page;
use crate::upstream::{Resolver, UpstreamConnector};

pub use door::{Door, decide};
pub use tunnel::{OpenError, Tunnels, Via};

/// The request hook: what potproxy does to the requests it forwards. One hook serves every
/// request; each request gets a fresh [`Hook::Ctx`] that its phases share (pingora's `CTX`).
/// Only requests the front door forwards reach it: never a `CONNECT`, an upgrade, a refusal or
/// a local answer.
pub trait Hook: Send + Sync + 'static {
    /// Per-request state, carried from [`Hook::request`] to [`Hook::response`] or
    /// [`Hook::failed`].
    type Ctx: Send;

    /// Runs first, for every forwarded request. `by_name`: the client reached the request's
    /// host by its name (absolute-form, or a `CONNECT`/SOCKS5 naming it), so it leaves name
    /// resolution to the proxy; false when it connected to an address it resolved itself
    /// (an IP `CONNECT`, SOCKS5 by address, transparent mode).
    fn new_ctx(&self, client: SocketAddr, by_name: bool) -> Self::Ctx;

    /// Before the request goes upstream: the request to send (changed or not), or the proxy's
    /// own response for the client.
    fn request(
        &self,
        cx: &mut Self::Ctx,
        req: Request<Body>,
    ) -> impl Future<Output = RequestOrResponse> + Send;

    /// The upstream response, before it goes to the client.
    fn response(
        &self,
        cx: &mut Self::Ctx,
        res: Response<Body>,
    ) -> impl Future<Output = Response<Body>> + Send;

    /// The request got no upstream response; the client is answered `status` (502, or 504
    /// when the headers did not come in time) by the server.
    fn failed(&self, cx: &mut Self::Ctx, status: StatusCode);
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

    /// Runs work that outlives a request (a tunnel, a connection inside a `CONNECT`) where a
    /// drain waits for it.
    fn spawn<F>(&self, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(work);
    }
}

/// What the front door needs to decide: who may come in, what is decrypted, which
/// destinations are refused, and the CA page it answers itself.
pub struct DoorRules {
    pub policy: InterceptPolicy,
    pub gate: Arc<Gate>,
    /// For `[upstream] resolve` overrides: names the operator pointed somewhere are not judged
    /// by the destination rule.
    pub resolver: Resolver,
    /// The CA certificate (PEM) the CA page at `http://potproxy.invalid/` serves.
    pub ca_pem: String,
}

impl DoorRules {
    /// What is known of an arrival before its first bytes: whether `host` is an IP literal or
    /// an intercepted name, the destination rule's verdict (when `judged`: not for the
    /// authority of the `CONNECT` a request came in), whether it is the CA page.
    fn arrival(
        &self,
        kind: door::Kind,
        entry: Entry,
        host: String,
        port: u16,
        judged: bool,
    ) -> door::Arrival {
        let ip_literal = is_ip_literal(&host);
        door::Arrival {
            kind,
            entry,
            ip_literal,
            port,
            intercepted: !ip_literal && self.policy.is_intercepted(&host),
            refused: judged.then(|| self.refused(&host, port)).flatten(),
            ca_page: ca_page::is_ca_page_host(&host),
            host,
            first: None,
        }
    }

    /// The destination rule for `host:port` as the client wrote it.
    fn refused(&self, host: &str, port: u16) -> Option<Refusal> {
        if self.resolver.lookup(host).is_some() {
            return None;
        }
        self.gate.destinations.check(host, port).err()
    }
}

/// Everything one client connection needs; shared by all of them.
pub struct ProxyServer<C, CA, H> {
    pub ca: Arc<CA>,
    pub client: Client<C, Body>,
    pub server: ServerBuilder<TokioExecutor>,
    pub hook: H,
    pub door: DoorRules,
    pub tunnels: Tunnels,
    /// HTTP/1-only connector (overrides, egress, destination rule, verified TLS) for upgrades.
    pub upgrades: UpstreamConnector,
    pub timeouts: Timeouts,
    pub max_connections: usize,
    pub drain: Drain,
}

/// Which protocol a listener's clients speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WayIn {
    /// An HTTP proxy (absolute-form requests, `CONNECT`, upgrades).
    Http,
    /// SOCKS5 (`[socks] listen`).
    Socks5,
    /// Connections redirected by the firewall (`[transparent] listen`); `tproxy` when the
    /// original destination is the socket's local address.
    Transparent { tproxy: bool },
}

/// Where a request arrived: its client connection, and the `CONNECT` it came inside, if any.
#[derive(Clone)]
struct Arrived {
    client_addr: SocketAddr,
    conn: ClientConn,
    /// The `CONNECT` the requests on this connection came inside (its entry check and
    /// destination were judged there).
    inside: Option<Inside>,
    /// The client named the host rather than an address it resolved itself (see
    /// [`Hook::new_ctx`]).
    by_name: bool,
}

/// What the requests inside an intercepted `CONNECT` are for.
#[derive(Clone)]
struct Inside {
    /// `https` inside decrypted TLS, `http` for plain HTTP inside the tunnel.
    scheme: http::uri::Scheme,
    authority: Authority,
}

/// How a served connection ended.
type Served = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// How often a repeated accept failure or refusal is logged, at most.
const LOG_EVERY: Duration = Duration::from_secs(10);

impl<C, CA, H> ProxyServer<C, CA, H>
where
    C: Connect + Clone + Send + Sync + 'static,
    CA: CertificateAuthority,
    H: Hook,
{
    /// Accepts and serves connections speaking `way` until [`Drain::stop`].
    pub async fn run(self: Arc<Self>, listener: TcpListener, way: WayIn) {
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
            self.drain.spawn(async move {
                this.serve_client(tcp, client_addr, way).await;
                drop(slot);
            });
        }
        tracing::info!(?way, "listener closed");
    }

    async fn serve_client(self: Arc<Self>, tcp: TcpStream, client_addr: SocketAddr, way: WayIn) {
        let activity = Activity::new(self.timeouts.client_idle);
        let arrived = Arrived {
            client_addr,
            conn: ClientConn {
                activity: activity.clone(),
                tunnel_idle: self.timeouts.tunnel_idle,
            },
            inside: None,
            by_name: true,
        };
        let dst = match way {
            WayIn::Transparent { tproxy } => {
                match transparent::original_destination(&tcp, tproxy) {
                    Ok(dst) => Some(dst),
                    Err(e) => {
                        tracing::warn!(%client_addr, error = %e, "a transparent connection without an original destination (not redirected?); closed");
                        return;
                    }
                }
            }
            _ => None,
        };
        let io = IdleIo::new(tcp, activity);
        match way {
            WayIn::Http => {
                if let Err(e) = self.serve_http(TokioIo::new(io), arrived).await {
                    tracing::debug!(%client_addr, error = %crate::errtext::error_chain(e.as_ref()), "client connection ended with an error");
                }
            }
            WayIn::Socks5 => self.serve_socks(io, arrived).await,
            WayIn::Transparent { .. } => {
                if let Some(dst) = dst {
                    self.serve_transparent(io, dst, arrived).await
                }
            }
        }
    }

    /// Serves HTTP on a client connection: the socket itself, or a connection inside a
    /// `CONNECT` (plain, or decrypted TLS). Each request goes through [`Self::arrival`].
    /// Boxed: a request inside a `CONNECT` comes back here, and the compiler needs one named
    /// future type to see that the cycle is `Send`.
    fn serve_http<I>(self: Arc<Self>, stream: I, arrived: Arrived) -> BoxFuture<'static, Served>
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        Box::pin(async move {
            let this = self.clone();
            let service = service_fn(move |req: Request<Incoming>| {
                let this = this.clone();
                let arrived = arrived.clone();
                async move { Ok::<_, std::convert::Infallible>(this.arrival(req, arrived).await) }
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
        })
    }

    /// One request read from a client: the front door decides, then the I/O it asked for.
    async fn arrival(self: Arc<Self>, req: Request<Incoming>, arrived: Arrived) -> Response<Body> {
        // The client is not idle while it waits for this response; the upstream clocks (and a
        // client that stops reading) still bound it.
        let busy = arrived.conn.activity.begin_request();
        // Each response counts as work in flight until its body is done: a drain waits for
        // it, and the memory hand-back sees HTTP/2 streams, not only connections.
        let tracked = self.drain.tracker.token();
        let idle = self.timeouts.upstream_idle;
        let mut req = req.map(Body::from);
        if let Some(inside) = &arrived.inside {
            point_at(&mut req, inside);
        }
        let res = self.clone().dispatch(req, &arrived).await;
        // Bodies the hook made from other upstream streams get the same clock.
        res.map(|b| {
            Body::from(
                IdleBody::new(b, idle)
                    .holding(busy)
                    .tracked(tracked)
                    .boxed(),
            )
        })
    }

    async fn dispatch(self: Arc<Self>, req: Request<Body>, arrived: &Arrived) -> Response<Body> {
        let target = Target::of(&req, arrived.inside.as_ref().map(|i| &i.authority));
        let Some(target) = target else {
            return text_response(
                StatusCode::BAD_REQUEST,
                "potproxy: no destination potproxy can judge (CONNECT needs host:port; no userinfo; a name or an IP address)\n".into(),
            );
        };
        // Not through a proxy at all: an origin-form request sent to potproxy itself.
        if arrived.inside.is_none() && req.uri().authority().is_none() {
            return text_response(
                StatusCode::BAD_REQUEST,
                "potproxy is a proxy: send absolute-form requests (http://host/...) or CONNECT\n"
                    .into(),
            );
        }
        let kind = if req.method() == Method::CONNECT {
            door::Kind::Connect
        } else if is_upgrade(req.headers()) {
            door::Kind::Upgrade
        } else {
            door::Kind::Request
        };
        let entry = match arrived.inside {
            Some(_) => Entry::Allowed,
            None => self
                .door
                .gate
                .entry(arrived.client_addr.ip(), req.headers()),
        };
        let arrival = self
            .door
            .arrival(kind, entry, target.host, target.port, target.judged);
        let decision = decide(&arrival);
        match decision {
            Door::RefuseClient(entry) => refuse_client(entry, arrived.client_addr),
            Door::RefuseDestination(r) | Door::Close(r) => {
                text_response(StatusCode::FORBIDDEN, r.text().to_string())
            }
            Door::AnswerLocally => self.ca_page(req.uri().path()),
            Door::TunnelNow | Door::ReadFirstBytes => {
                self.connect(req, arrival, decision, arrived).await
            }
            Door::Upgrade => self.upgrade(req, arrived).await,
            Door::Forward => self.forward(req, arrived).await,
            // Only asked again after the first bytes of a CONNECT (see `connect`).
            Door::Decrypt { .. }
            | Door::ServeHttp
            | Door::TunnelAfterFirstBytes
            | Door::CloseForeign => text_response(StatusCode::BAD_REQUEST, String::new()),
        }
    }

    /// The hook's phases around one upstream request.
    async fn forward(&self, mut req: Request<Body>, arrived: &Arrived) -> Response<Body> {
        strip_hop_by_hop(req.headers_mut(), false);
        let mut cx = self.hook.new_ctx(arrived.client_addr, arrived.by_name);
        let req = match self.hook.request(&mut cx, req).await {
            RequestOrResponse::Request(req) => req,
            RequestOrResponse::Response(res) => return res,
        };
        let sent = tokio::time::timeout(
            self.timeouts.upstream_headers,
            self.client.request(normalize_request(req)),
        )
        .await;
        let res = match sent {
            Ok(Ok(res)) => res,
            Ok(Err(e)) => {
                let chain = crate::errtext::error_chain(&e);
                tracing::warn!(error = %chain, "upstream request failed");
                crate::metrics::UPSTREAM_ERRORS.with(&["request"]).inc();
                self.hook.failed(&mut cx, StatusCode::BAD_GATEWAY);
                return text_response(
                    StatusCode::BAD_GATEWAY,
                    format!("potproxy: upstream request failed: {chain}\n"),
                );
            }
            Err(_) => {
                self.hook.failed(&mut cx, StatusCode::GATEWAY_TIMEOUT);
                return self.headers_timed_out();
            }
        };
        // The clock also bounds what the hook reads of the body itself.
        let idle = self.timeouts.upstream_idle;
        let res = res.map(|b| Body::from(IdleBody::new(Body::from(b), idle).boxed()));
        self.hook.response(&mut cx, res).await
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

    /// The CA page (`/`) or the PEM (`/ca.pem`) for `http://potproxy.invalid/`.
    fn ca_page(&self, path: &str) -> Response<Body> {
        let pem = &self.door.ca_pem;
        let (status, ctype, body) = match path {
            "/ca.pem" => (StatusCode::OK, ca_page::PEM_CONTENT_TYPE, pem.clone()),
            "/" | "" => (
                StatusCode::OK,
                "text/html; charset=utf-8",
                ca_page::ca_page(pem),
            ),
            _ => (
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "potproxy: the CA page is at / and the certificate at /ca.pem\n".to_string(),
            ),
        };
        Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, ctype)
            .header(http::header::CACHE_CONTROL, "no-store")
            .body(Body::from(body))
            .expect("static response parts are valid")
    }
}

/// The destination of a request as the door sees it.
struct Target {
    host: String,
    port: u16,
    /// Whether the destination rule still has to judge it: not for the authority of the
    /// `CONNECT` a request came in (judged there), nor for a request without an authority
    /// (it cannot be forwarded anywhere).
    judged: bool,
}

impl Target {
    /// `None` for what names no destination potproxy agrees to reach: a `CONNECT` without
    /// `host:port`, an authority with userinfo, a host that is neither an IP literal nor a name
    /// ([`is_acceptable_host`]).
    fn of(req: &Request<Body>, inside: Option<&Authority>) -> Option<Target> {
        let default_port = match (req.method(), req.uri().scheme_str()) {
            (&Method::CONNECT, _) | (_, Some("https")) => 443,
            _ => 80,
        };
        let judged_authority = |a: &Authority, judged: bool| {
            if a.as_str().contains('@') {
                return None;
            }
            let t = Target::new(a.host(), a.port_u16().unwrap_or(default_port), judged);
            is_acceptable_host(&t.host).then_some(t)
        };
        if req.method() == Method::CONNECT {
            return judged_authority(req.uri().authority()?, true);
        }
        if let Some(a) = req.uri().authority() {
            return judged_authority(a, Some(a) != inside);
        }
        let host = req
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| split_authority(h, default_port).0)
            .unwrap_or("-");
        Some(Target::new(host, default_port, false))
    }

    fn new(host: &str, port: u16, judged: bool) -> Target {
        Target {
            host: host
                .trim_matches(|c| c == '[' || c == ']')
                .trim_end_matches('.')
                .to_ascii_lowercase(),
            port,
            judged,
        }
    }
}

/// HTTP/1 requests inside a `CONNECT` carry only a path: give them the scheme and authority of
/// the connection they came in (HTTP/2 requests carry their own).
fn point_at(req: &mut Request<Body>, inside: &Inside) {
    if req.uri().authority().is_some() {
        return;
    }
    let mut parts = req.uri().clone().into_parts();
    parts.scheme = Some(inside.scheme.clone());
    parts.authority = Some(inside.authority.clone());
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    if let Ok(uri) = http::Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
}

/// The answer to a client the entry check refused: 407 to ask for credentials, 429 with
/// `Retry-After` during a login back-off, 403 for a client outside the allowed ranges.
fn refuse_client(entry: Entry, peer: SocketAddr) -> Response<Body> {
    match entry {
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
            res
        }
        Entry::BackedOff { retry_after } => {
            let mut res = text_response(
                StatusCode::TOO_MANY_REQUESTS,
                "potproxy: too many failed proxy logins from this address; retry later\n".into(),
            );
            res.headers_mut().insert(
                http::header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs_f64().ceil().max(1.0) as u64),
            );
            res
        }
        Entry::ForeignClient | Entry::Allowed => {
            tracing::warn!(%peer, "refused a client outside loopback and private networks (no [auth] configured)");
            text_response(
                StatusCode::FORBIDDEN,
                "potproxy: clients outside loopback and private networks need [auth]\n".into(),
            )
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

/// hyper sets Host from the URI; HTTP/2 may split cookies, HTTP/1 may not.
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

    fn req(method: Method, uri: &str) -> Request<Body> {
        Request::builder()
            .method(method)
            .uri(uri)
            .header(HOST, "WWW.YouTube.com:443")
            .body(Body::empty())
            .unwrap()
    }

    #[test]
    fn a_request_inside_its_connect_is_not_judged_again_but_another_authority_is() {
        let inside = Inside {
            scheme: http::uri::Scheme::HTTPS,
            authority: "www.youtube.com:443".parse().unwrap(),
        };
        let mut r = req(Method::GET, "/watch?v=x");
        point_at(&mut r, &inside);
        assert_eq!(r.uri().to_string(), "https://www.youtube.com:443/watch?v=x");
        let t = Target::of(&r, Some(&inside.authority)).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.judged),
            ("www.youtube.com", 443, false)
        );
        let other = req(Method::GET, "https://127.0.0.1:4416/session");
        let t = Target::of(&other, Some(&inside.authority)).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.judged),
            ("127.0.0.1", 4416, true)
        );
    }

    #[test]
    fn connect_targets_are_split_and_lower_cased() {
        let t = Target::of(&req(Method::CONNECT, "[::1]:8443"), None).unwrap();
        assert_eq!((t.host.as_str(), t.port, t.judged), ("::1", 8443, true));
        let t = Target::of(&req(Method::CONNECT, "WWW.YouTube.com:443"), None).unwrap();
        assert_eq!(t.host, "www.youtube.com");
    }
}
