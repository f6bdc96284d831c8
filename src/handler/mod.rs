//! The request hook ([`PotHook`], a [`crate::serve::Hook`]): every request the front door
//! forwards goes through the same named stages, and its response comes back through the stage
//! that watches it.
//!
//! The server calls [`Hook::request`] and then [`Hook::response`] (or [`Hook::failed`]) with
//! the same per-request context, a [`PotHandler`] made fresh for each request: `note` carries
//! what the request stages did over to the watch stage. CONNECTs, upgrades, refusals and the CA
//! page never reach the hook (see [`crate::serve::door`]).
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

mod gateway;
mod media;
mod pages;
mod plan;
mod player;
mod stages;

use std::sync::Arc;

use http::header::HOST;
use http::{Request, Response, StatusCode, Uri};
use hudsucker::{Body, RequestOrResponse};

use crate::classify::{Route, classify};
use crate::intercept::{InterceptPolicy, split_authority};
use crate::learn::regimes::Regimes;
use crate::learn::session::SessionStore;
use crate::observe::{Exchange, Kind, Outcome};
use crate::serve::{Hook, text_response};
use crate::tokens::TokenService;
use crate::upstream::HttpClient;

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
    /// Give SABR-only formats gateway URLs (`[sabr] gateway`).
    pub sabr_gateway: bool,
}

/// State shared by every request.
pub struct Shared {
    pub policy: InterceptPolicy,
    pub tokens: TokenService,
    pub settings: RewriteSettings,
    pub sessions: SessionStore,
    pub identities: crate::learn::session::Identities,
    pub regimes: Regimes,
    /// For requests the proxy sends again on a client's behalf (re-issued media, continuations,
    /// player requests after a bot check), under the destination rule like the first send.
    pub http: HttpClient,
    /// The `ip=` this node's own player responses are bound to (the address googlevideo
    /// sees it leave from), for the gateway's fleet check.
    pub own_ip: std::sync::Mutex<Option<String>>,
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
    /// An HTML page: read its ytcfg; `Some(client)`: a page whose SABR-only formats get
    /// gateway URLs for this client.
    Page(Option<&'static str>),
    /// Another InnerTube call: read its `responseContext`.
    InnerTube,
}

/// The request hook the server calls ([`crate::serve::Hook`]); one per proxy.
pub struct PotHook {
    shared: Arc<Shared>,
}

impl PotHook {
    pub fn new(shared: Arc<Shared>) -> Self {
        PotHook { shared }
    }
}

/// One request's context: what its stages learned on the way out, for the stage that watches
/// its response. Made fresh for each request by [`PotHook`].
pub struct PotHandler {
    shared: Arc<Shared>,
    note: Option<Note>,
    /// This request's record for the access log and counters.
    exchange: Option<Arc<Exchange>>,
    /// The client the request came from (for the live page).
    client: Option<std::net::SocketAddr>,
    /// The client named the host (so it would also reach a gateway URL's name through the
    /// proxy); see [`crate::serve::Hook::new_ctx`].
    by_name: bool,
}

impl PotHandler {
    fn new(shared: Arc<Shared>) -> Self {
        PotHandler {
            shared,
            note: None,
            exchange: None,
            client: None,
            by_name: true,
        }
    }

    /// Whether this request's client may get gateway URLs: turned on, the gateway's name
    /// intercepted, and a client that leaves name resolution to the proxy (one that resolves
    /// names itself, in transparent mode or over SOCKS5 by address, could never reach it).
    fn gateway_reachable(&self) -> bool {
        self.shared.settings.sabr_gateway
            && self.by_name
            && self
                .shared
                .policy
                .is_intercepted(crate::sabr::gateway::GATEWAY_HOST)
    }

    /// Marks what this request is / what was done with it (see [`Exchange`]).
    fn observed(&self) -> Option<&Exchange> {
        self.exchange.as_deref()
    }
}

/// The host a request is for: its URI's authority (absolute-form, HTTP/2 `:authority`, or the
/// `CONNECT` it came inside), where it really goes; the Host header only when the URI has none.
/// A Host header naming YouTube never makes a request for another destination YouTube's.
/// Lower-cased, without port.
fn request_host(req: &Request<Body>) -> Option<String> {
    let from_header = || {
        req.headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| split_authority(h, 443).0.to_string())
    };
    req.uri()
        .host()
        .map(str::to_string)
        .or_else(from_header)
        .map(|h| {
            h.trim_matches(|c| c == '[' || c == ']')
                .to_ascii_lowercase()
        })
        .filter(|h| !h.is_empty())
}

fn with_path_and_query(uri: &Uri, pq: &str) -> Option<Uri> {
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(pq.parse().ok()?);
    Uri::from_parts(parts).ok()
}

impl PotHandler {
    async fn on_request(&mut self, req: Request<Body>) -> RequestOrResponse {
        let Some(host) = request_host(&req) else {
            return RequestOrResponse::Request(req);
        };
        if !self.shared.policy.is_intercepted(&host) {
            return RequestOrResponse::Request(req);
        }
        let pq = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        if crate::sabr::gateway::is_gateway_host(&host) {
            return self.on_gateway_request(req, &pq).await;
        }
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
                self.note = Some(Note::Page(self.page_gateway(&req, &host, &pq)));
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

impl Hook for PotHook {
    type Ctx = PotHandler;

    fn new_ctx(&self, client: std::net::SocketAddr, by_name: bool) -> PotHandler {
        let mut cx = PotHandler::new(self.shared.clone());
        cx.client = Some(client);
        cx.by_name = by_name;
        cx
    }

    async fn request(&self, cx: &mut PotHandler, req: Request<Body>) -> RequestOrResponse {
        let host = request_host(&req).unwrap_or_else(|| "-".into());
        let exchange = Exchange::open(&req, &host);
        if let Some(client) = cx.client {
            exchange.client(client);
        }
        cx.exchange = Some(exchange.clone());
        match cx.on_request(req).await {
            RequestOrResponse::Request(req) => {
                RequestOrResponse::Request(exchange.count_request(req))
            }
            RequestOrResponse::Response(res) => {
                cx.exchange = None;
                RequestOrResponse::Response(exchange.finish(res))
            }
        }
    }

    async fn response(&self, cx: &mut PotHandler, res: Response<Body>) -> Response<Body> {
        let res = cx.watch_response(res).await;
        match cx.exchange.take() {
            Some(ex) => {
                if res.status() == StatusCode::FORBIDDEN && ex.current_kind().carries_token() {
                    ex.outcome(Outcome::RefusedUpstream);
                }
                ex.finish(res)
            }
            None => res,
        }
    }

    fn failed(&self, cx: &mut PotHandler, status: StatusCode) {
        if let Some(ex) = cx.exchange.take() {
            ex.failed(status.as_u16());
        }
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
            Some(Note::Page(gateway)) if res.status().is_success() => {
                self.on_page_response(res, gateway).await
            }
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
    fn the_uri_names_the_host_and_a_host_header_cannot_redirect_it() {
        let req = Request::builder()
            .uri("https://evil.example:6379/videoplayback?x=1")
            .header(HOST, "rr1---sn-x.googlevideo.com")
            .body(Body::empty())
            .unwrap();
        assert_eq!(request_host(&req).as_deref(), Some("evil.example"));
        let origin_form = Request::builder()
            .uri("/youtubei/v1/player")
            .header(HOST, "WWW.YouTube.com:443")
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            request_host(&origin_form).as_deref(),
            Some("www.youtube.com")
        );
    }
}
