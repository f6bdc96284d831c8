//! The hudsucker hook: every intercepted request goes through the same named stages, and its
//! response comes back through the stage that watches it.
//!
//! hudsucker calls [`HttpHandler::handle_request`] for every request it reads from a client,
//! CONNECT included, on a fresh clone of the handler; `handle_response` runs on the same clone
//! for that request's response. So the clone is the per-request context: `note` carries what
//! `handle_request` did over to `handle_response`.
//!
//! ```text
//!  client request
//!      |
//!  classify (crate::classify)  -> Route: Player | Media/Manifest | Subtitles | Page | InnerTube
//!      |
//!  read      stages::read_request       body within the cap (player, SABR); URL routes: none
//!      |
//!  plan      plan::plan_player          pure: client, TokenContext, Placement, or Pass
//!            plan::plan_media               (forward untouched). A player request's token
//!            plan::plan_captions            is decided here: PlayerPlan.action, by
//!            plan::sabr_choice              token::keep_client_token (one rule for all)
//!      |
//!  context   playback and regime learned earlier; player: visitor_id when none (innertube)
//!      |
//!  token     stages::token_for          Plan::binding -> TokenService
//!      |
//!  apply     plan::apply_player         pure: the token (and fetched visitor data) put where
//!            plan::apply_url                the plan said; bodies via body::Whole::replaced,
//!            sabr::set_po_token             which keeps Content-Length true
//!      |
//!  forward   RequestOrResponse::Request; note = Player | Media | Page | InnerTube
//!      .
//!  watch     handle_response, by note: player::on_player_response and pages read the
//!            response to learn (stages::read_for_learning); media::on_media_response acts on
//!            plan::judge_media_response: retry a 403 with the other regime's token (or, the
//!            regime known good, with a fresh token: crate::heal), resume a body that
//!            breaks mid-stream (heal::resume), or watch a UMP stream for the in-band
//!            rejection; player responses asking for the bot check are re-sent with a
//!            fresh token
//! ```
//!
//! Any stage that fails gives up (`PotHandler::give_up`): the original request is forwarded
//! unchanged and the reason logged, unless `strict` is set, in which case the client gets a
//! 502 with the reason. A new route is a new plan/apply pair in `plan` and a few lines of
//! orchestration in its module: `player` (InnerTube player bodies and responses), `media`
//! (googlevideo URLs, SABR bodies, captions, recovery from rejected tokens) and `pages` (ytcfg
//! in HTML pages).

mod guard;
mod media;
mod pages;
mod plan;
mod player;
mod stages;

use std::sync::Arc;

use http::header::HOST;
use http::{Method, Request, Response, StatusCode, Uri};
use hudsucker::{Body, RequestOrResponse};
// The server's own handler trait (hudsucker's, served by `crate::serve`).
use crate::serve::{HttpContext, HttpHandler};
use hyper_util::rt::TokioIo;

use crate::classify::{Route, classify};
use crate::intercept::{ConnectDecision, InterceptPolicy, is_ip_literal, split_authority};
use crate::learn::regimes::Regimes;
use crate::learn::session::SessionStore;
use crate::limits::ClientConn;
use crate::observe::ca_page::{self, is_ca_page_host};
use crate::observe::{Exchange, Kind, Outcome};
use crate::serve::text_response;
use crate::tokens::TokenService;
use crate::upstream::{HttpClient, Resolver};

pub use media::MediaNote;

/// Settings the handler reads on every request.
#[derive(Debug, Clone)]
pub struct RewriteSettings {
    pub strict: bool,
    pub max_body_bytes: usize,
    pub sentinels: Vec<String>,
    pub always_replace: bool,
    /// Put tokens into the URLs of player responses too (`[rewrite] player_response`).
    pub player_response: bool,
}

/// State shared by every request.
pub struct Shared {
    pub policy: InterceptPolicy,
    pub resolver: Resolver,
    pub tokens: TokenService,
    pub settings: RewriteSettings,
    pub sessions: SessionStore,
    pub identities: crate::learn::session::Identities,
    pub regimes: Regimes,
    /// For requests the proxy makes itself (re-issued media, visitor data).
    pub http: HttpClient,
    /// The CA certificate (PEM) the CA page at `http://potproxy.invalid/` serves.
    pub ca_pem: String,
    /// Entry checks: proxy auth, client addresses, destinations (`crate::access`).
    pub gate: Arc<crate::access::Gate>,
    /// HTTP/1-only connector (overrides, egress, verified TLS) for relayed upgrades.
    pub upgrades: crate::upstream::UpstreamConnector,
}

/// Responses read for learning, at most (larger ones pass unread).
const RESPONSE_CAP: usize = 8 * 1024 * 1024;

/// What `handle_request` did, for `handle_response` of the same exchange.
#[derive(Debug, Clone)]
enum Note {
    /// A WebPO player request: learn (and maybe rewrite) its response.
    Player(player::PlayerNote),
    /// A googlevideo request that carries the proxy's token.
    Media(Box<MediaNote>),
    /// An HTML page: read its ytcfg.
    Page,
    /// Another InnerTube call: read its `responseContext`.
    InnerTube,
}

#[derive(Clone)]
pub struct PotHandler {
    shared: Arc<Shared>,
    note: Option<Note>,
    /// This request's record for the access log and counters (fresh per request).
    exchange: Option<Arc<Exchange>>,
    /// This connection's CONNECT passed the entry check (hudsucker hands the requests it reads
    /// inside the tunnel to clones of this handler).
    checked_tunnel: bool,
    /// That CONNECT's authority.
    connect_authority: Option<String>,
}

impl PotHandler {
    pub fn new(shared: Arc<Shared>) -> Self {
        PotHandler {
            shared,
            note: None,
            exchange: None,
            checked_tunnel: false,
            connect_authority: None,
        }
    }

    /// Marks what this request is / what was done with it (see [`Exchange`]).
    fn observed(&self) -> Option<&Exchange> {
        self.exchange.as_deref()
    }
}

/// The host a request is for: the Host header when present (HTTP/1), else the URI (HTTP/2
/// `:authority`, absolute-form requests). Lower-cased, without port.
fn request_host(req: &Request<Body>) -> Option<String> {
    let from_header = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| split_authority(h, 443).0.to_string());
    from_header
        .or_else(|| req.uri().host().map(str::to_string))
        .map(|h| {
            h.trim_matches(|c| c == '[' || c == ']')
                .to_ascii_lowercase()
        })
        .filter(|h| !h.is_empty())
}

/// After a CONNECT to an IP literal, hudsucker puts that IP into the URI; the real name is in
/// the Host header. Point the URI at the name so upstream TLS uses the right SNI.
fn use_host_header_authority(req: &mut Request<Body>, host: &str) {
    let Some(uri_host) = req.uri().host() else {
        return;
    };
    if !is_ip_literal(uri_host.trim_matches(|c| c == '[' || c == ']')) || is_ip_literal(host) {
        return;
    }
    let port = req.uri().port_u16();
    let mut parts = req.uri().clone().into_parts();
    let authority = match port {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    if let Ok(a) = authority.parse() {
        parts.authority = Some(a);
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
}

fn with_path_and_query(uri: &Uri, pq: &str) -> Option<Uri> {
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(pq.parse().ok()?);
    Uri::from_parts(parts).ok()
}

impl PotHandler {
    /// CONNECT: named hosts that are not intercepted are tunnelled right here, so the server can
    /// speak first; the rest go on to hudsucker's TLS interception.
    async fn on_connect(&self, mut req: Request<Body>) -> RequestOrResponse {
        let Some(authority) = req.uri().authority().map(|a| a.to_string()) else {
            return RequestOrResponse::Response(text_response(
                StatusCode::BAD_REQUEST,
                "potproxy: CONNECT needs host:port\n".into(),
            ));
        };
        match self.shared.policy.decide_connect(&authority) {
            ConnectDecision::Tunnel => {}
            ConnectDecision::DecideBySni => return self.on_ip_connect(req, authority).await,
            ConnectDecision::Intercept => return RequestOrResponse::Request(Self::sealed(req)),
        }
        let (host, port) = split_authority(&authority, 443);
        if let Err(r) = self.check_destination(host, port) {
            return RequestOrResponse::Response(text_response(
                StatusCode::FORBIDDEN,
                r.text().to_string(),
            ));
        }
        let started = std::time::Instant::now();
        let server = match self.shared.resolver.dial(host, port).await {
            Ok(s) => s,
            Err(e) => {
                crate::metrics::UPSTREAM_ERRORS.with(&["tunnel_dial"]).inc();
                crate::observe::tunnel_closed(&authority, started, None);
                tracing::warn!(%authority, error = %e, "tunnel: cannot reach upstream");
                return RequestOrResponse::Response(text_response(
                    StatusCode::BAD_GATEWAY,
                    format!("potproxy: cannot connect to {authority}: {e}\n"),
                ));
            }
        };
        if let Err(r) = self.check_dialled(host, &server) {
            return RequestOrResponse::Response(text_response(
                StatusCode::FORBIDDEN,
                r.text().to_string(),
            ));
        }
        let upgrade = hyper::upgrade::on(&mut req);
        // The tunnel keeps its own idle clock over both sides (`[timeouts] tunnel_idle_secs`);
        // the client socket's shorter one stops here.
        let conn = req.extensions().get::<ClientConn>().cloned();
        let idle = conn
            .as_ref()
            .map(ClientConn::into_tunnel)
            .unwrap_or(crate::limits::Timeouts::default().tunnel_idle);
        let work = async move {
            match upgrade.await {
                Ok(upgraded) => {
                    let client = TokioIo::new(upgraded);
                    match crate::limits::tunnel(client, server, idle).await {
                        Ok((up, down)) => {
                            crate::observe::tunnel_closed(&authority, started, Some((up, down)))
                        }
                        Err(e) => {
                            crate::observe::tunnel_closed(&authority, started, None);
                            tracing::debug!(%authority, error = %e, "tunnel closed with error");
                        }
                    }
                }
                Err(e) => tracing::debug!(%authority, error = %e, "tunnel: client upgrade failed"),
            }
        };
        match conn {
            Some(conn) => conn.spawn(work),
            None => {
                tokio::spawn(work);
            }
        }
        RequestOrResponse::Response(
            Response::builder()
                .status(StatusCode::OK)
                .body(Body::empty())
                .expect("static response parts are valid"),
        )
    }

    async fn on_request(&mut self, mut req: Request<Body>) -> RequestOrResponse {
        let Some(host) = request_host(&req) else {
            return RequestOrResponse::Request(req);
        };
        if is_ca_page_host(&host) {
            return RequestOrResponse::Response(self.ca_page(req.uri().path()));
        }
        if !self.shared.policy.is_intercepted(&host) {
            return RequestOrResponse::Request(req);
        }
        use_host_header_authority(&mut req, &host);
        let pq = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let route = classify(req.method(), &host, &pq);
        if let Some(ex) = self.observed() {
            ex.kind(Kind::of(&route));
        }
        match route {
            Route::Player => self.on_player_request(req, &host).await,
            Route::Media { .. } | Route::Manifest { .. } => {
                self.on_media_request(req, &host, &pq, &route).await
            }
            Route::Subtitles { .. } => self.on_caption_request(req, &host, &pq, &route).await,
            Route::Page => {
                self.note = Some(Note::Page);
                RequestOrResponse::Request(req)
            }
            Route::InnerTube => {
                self.note = Some(Note::InnerTube);
                RequestOrResponse::Request(req)
            }
            Route::Other => RequestOrResponse::Request(req),
        }
    }
}

impl PotHandler {
    /// The CA page (`/`) or the PEM (`/ca.pem`) for `http://potproxy.invalid/`.
    fn ca_page(&self, path: &str) -> Response<Body> {
        let (status, ctype, body) = match path {
            "/ca.pem" => (
                StatusCode::OK,
                ca_page::PEM_CONTENT_TYPE,
                self.shared.ca_pem.clone(),
            ),
            "/" | "" => (
                StatusCode::OK,
                "text/html; charset=utf-8",
                ca_page::ca_page(&self.shared.ca_pem),
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

impl HttpHandler for PotHandler {
    async fn handle_request(
        &mut self,
        ctx: &HttpContext,
        mut req: Request<Body>,
    ) -> RequestOrResponse {
        if let Some(refused) = self.guard(ctx.client_addr, &mut req) {
            return RequestOrResponse::Response(refused);
        }
        if Self::wants_upgrade(&req) {
            return self.on_upgrade(req).await;
        }
        if req.method() == Method::CONNECT {
            return self.on_connect(req).await;
        }
        let host = request_host(&req).unwrap_or_else(|| "-".into());
        let exchange = Exchange::open(&req, &host);
        self.exchange = Some(exchange.clone());
        match self.on_request(req).await {
            RequestOrResponse::Request(req) => {
                RequestOrResponse::Request(exchange.count_request(req))
            }
            RequestOrResponse::Response(res) => {
                self.exchange = None;
                RequestOrResponse::Response(exchange.finish(res))
            }
        }
    }

    async fn handle_response(&mut self, _ctx: &HttpContext, res: Response<Body>) -> Response<Body> {
        let res = self.watch_response(res).await;
        match self.exchange.take() {
            Some(ex) => {
                if res.status() == StatusCode::FORBIDDEN && ex.current_kind().carries_token() {
                    ex.outcome(Outcome::RefusedUpstream);
                }
                ex.finish(res)
            }
            None => res,
        }
    }

    async fn handle_error(
        &mut self,
        _ctx: &HttpContext,
        err: hyper_util::client::legacy::Error,
    ) -> Response<Body> {
        let chain = crate::errtext::error_chain(&err);
        tracing::warn!(error = %chain, "upstream request failed");
        crate::metrics::UPSTREAM_ERRORS.with(&["request"]).inc();
        if let Some(ex) = self.exchange.take() {
            ex.failed(StatusCode::BAD_GATEWAY.as_u16());
        }
        text_response(
            StatusCode::BAD_GATEWAY,
            format!("potproxy: upstream request failed: {chain}\n"),
        )
    }

    /// Reached only for CONNECTs `on_connect` passed on: listed hosts and IP literals.
    async fn should_intercept_connect(&mut self, _ctx: &HttpContext, _req: &Request<Body>) -> bool {
        true
    }

    /// Only CONNECTs to listed names reach here (IP literals are decided in `guard`), so the
    /// answer is always yes: hudsucker would dial a "no" itself, past the resolver and the
    /// egress proxy. A ClientHello for another name gets a leaf the client will not accept.
    async fn should_intercept_tls(
        &mut self,
        _ctx: &HttpContext,
        _hello: rustls::server::ClientHello<'_>,
    ) -> bool {
        true
    }
}

impl PotHandler {
    /// The watch stage, by note.
    async fn watch_response(&mut self, res: Response<Body>) -> Response<Body> {
        match self.note.take() {
            Some(Note::Player(note)) if res.status().is_success() => {
                self.on_player_response(res, note).await
            }
            Some(Note::Media(note)) => self.on_media_response(res, *note).await,
            Some(Note::Page) if res.status().is_success() => self.on_page_response(res).await,
            Some(Note::InnerTube) if res.status().is_success() => {
                self.on_innertube_response(res).await
            }
            _ => res,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_wins_and_loses_its_port() {
        let req = Request::builder()
            .uri("https://127.0.0.1:443/youtubei/v1/player")
            .header(HOST, "WWW.YouTube.com:443")
            .body(Body::empty())
            .unwrap();
        assert_eq!(request_host(&req).as_deref(), Some("www.youtube.com"));
    }

    #[test]
    fn ip_authority_is_replaced_by_the_host_name() {
        let mut req = Request::builder()
            .uri("https://127.0.0.1:443/x?y=1")
            .header(HOST, "www.youtube.com")
            .body(Body::empty())
            .unwrap();
        use_host_header_authority(&mut req, "www.youtube.com");
        assert_eq!(req.uri().to_string(), "https://www.youtube.com:443/x?y=1");
    }
}
