//! The hudsucker hook: per request, decide (CONNECT filter, classification), rewrite, and forward.
//!
//! hudsucker calls [`HttpHandler::handle_request`] for every request it reads from a client,
//! CONNECT included, on a fresh clone of the handler; `handle_response` runs on the same clone
//! for that request's response. So the clone is the per-request context: `note` carries what
//! `handle_request` did over to `handle_response`.
//!
//! Every rewrite failure forwards the original request unchanged and logs why, unless `strict`
//! is set, in which case the client gets a 502 with the reason.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri};
use hudsucker::{Body, HttpContext, HttpHandler, RequestOrResponse};
use hyper_util::rt::TokioIo;

use crate::body::{Buffered, buffer_to_cap, decode};
use crate::classify::{Route, classify, is_webpo_client};
use crate::intercept::{ConnectDecision, InterceptPolicy, is_ip_literal, split_authority};
use crate::rewrite::media::{rewrite_manifest, rewrite_media};
use crate::rewrite::player::{PlayerAction, PlayerRequest};
use crate::session::{PlaybackInfo, SessionStore, media_url_keys, playback_info, url_keys};
use crate::token::{Binding, Token};
use crate::tokens::{TokenRequest, TokenService};
use crate::upstream::Resolver;

/// Settings the handler reads on every request.
#[derive(Debug, Clone)]
pub struct RewriteSettings {
    pub strict: bool,
    pub max_body_bytes: usize,
    pub sentinels: Vec<String>,
    pub always_replace: bool,
}

/// State shared by every request.
pub struct Shared {
    pub policy: InterceptPolicy,
    pub resolver: Resolver,
    pub tokens: TokenService,
    pub settings: RewriteSettings,
    pub sessions: SessionStore,
}

/// Player responses read for learning, at most (larger ones pass unread).
const RESPONSE_CAP: usize = 8 * 1024 * 1024;

/// What `handle_request` did, for `handle_response` of the same exchange.
#[derive(Debug, Clone)]
enum Note {
    /// A WebPO player request: learn the media URLs of its response.
    Player {
        video: Option<String>,
        client: String,
        visitor: Option<String>,
    },
    /// A media request that carries the proxy's token.
    Media {
        host: String,
        path: String,
        token: Token,
    },
}

#[derive(Clone)]
pub struct PotHandler {
    shared: Arc<Shared>,
    note: Option<Note>,
}

impl PotHandler {
    pub fn new(shared: Arc<Shared>) -> Self {
        PotHandler { shared, note: None }
    }
}

/// A request that could not be rewritten: forwarded as it came, or refused under `strict`.
fn give_up(strict: bool, req: Request<Body>, host: &str, reason: &str) -> RequestOrResponse {
    if strict {
        tracing::warn!(%host, path = %req.uri().path(), %reason, "strict: refusing request");
        return RequestOrResponse::Response(text_response(
            StatusCode::BAD_GATEWAY,
            format!("potproxy (strict): {reason}\n"),
        ));
    }
    tracing::warn!(%host, path = %req.uri().path(), %reason, "forwarding request unchanged");
    RequestOrResponse::Request(req)
}

fn text_response(status: StatusCode, text: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(text))
        .expect("static response parts are valid")
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
    async fn token_for(&self, binding: Binding, client: &str) -> Result<Token, String> {
        self.shared
            .tokens
            .get(&TokenRequest {
                client: Some(client.to_string()),
                ..TokenRequest::new(binding)
            })
            .await
            .map_err(|e| e.to_string())
    }

    /// CONNECT: named hosts that are not intercepted are tunnelled right here, so the server can
    /// speak first; the rest go on to hudsucker's TLS interception.
    async fn on_connect(&self, mut req: Request<Body>) -> RequestOrResponse {
        let Some(authority) = req.uri().authority().map(|a| a.to_string()) else {
            return RequestOrResponse::Response(text_response(
                StatusCode::BAD_REQUEST,
                "potproxy: CONNECT needs host:port\n".into(),
            ));
        };
        if self.shared.policy.decide_connect(&authority) != ConnectDecision::Tunnel {
            return RequestOrResponse::Request(req);
        }
        let (host, port) = split_authority(&authority, 443);
        let server = match self.shared.resolver.dial(host, port).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%authority, error = %e, "tunnel: cannot reach upstream");
                return RequestOrResponse::Response(text_response(
                    StatusCode::BAD_GATEWAY,
                    format!("potproxy: cannot connect to {authority}: {e}\n"),
                ));
            }
        };
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let mut server = server;
            match upgrade.await {
                Ok(upgraded) => {
                    let mut client = TokioIo::new(upgraded);
                    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut server).await {
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

    async fn on_request(&mut self, mut req: Request<Body>) -> RequestOrResponse {
        let Some(host) = request_host(&req) else {
            return RequestOrResponse::Request(req);
        };
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
        match route {
            Route::Player => self.rewrite_player(req, &host).await,
            Route::Media { .. } | Route::Manifest { .. } => {
                self.rewrite_url(req, &host, &pq, &route).await
            }
            Route::Other => RequestOrResponse::Request(req),
        }
    }

    /// The playback a media URL belongs to, as learned from its player response.
    fn playback_of(&self, pq: &str) -> Option<PlaybackInfo> {
        let (path, query) = match pq.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (pq, None),
        };
        let (ei, id, _) = media_url_keys(path, query);
        self.shared.sessions.lookup(ei.as_deref(), id.as_deref())
    }

    /// Reads a player response (up to a cap) to learn its media URLs, and hands the client
    /// the same bytes.
    async fn learn_from_player(
        &self,
        res: Response<Body>,
        video: Option<String>,
        client: String,
        visitor: Option<String>,
    ) -> Response<Body> {
        let (parts, body) = res.into_parts();
        let bytes = match buffer_to_cap(body, RESPONSE_CAP).await {
            Ok(Buffered::Complete(b)) => b,
            Ok(Buffered::TooLarge(body)) => return Response::from_parts(parts, body),
            Err(e) => {
                tracing::debug!(error = %e, "player response body failed while reading");
                return Response::from_parts(parts, Body::empty());
            }
        };
        let encoding = parts
            .headers
            .get(CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok());
        let decoded = match encoding {
            Some(enc) => decode(enc, &bytes, RESPONSE_CAP).ok().map(Bytes::from),
            None => Some(bytes.clone()),
        };
        if let Some(v) = decoded.and_then(|d| serde_json::from_slice::<serde_json::Value>(&d).ok())
        {
            let keys = url_keys(&v);
            if let Some(info) =
                playback_info(&v, video.as_deref(), Some(&client), visitor.as_deref())
            {
                tracing::debug!(video = %info.video_id, %client, ei = keys.ei.len(), id = keys.id.len(), "learned player response");
                self.shared.sessions.learn(&keys, info);
            }
        }
        Response::from_parts(parts, Body::from(bytes))
    }

    async fn rewrite_url(
        &mut self,
        mut req: Request<Body>,
        host: &str,
        pq: &str,
        route: &Route,
    ) -> RequestOrResponse {
        let Some(client) = route.url_client().filter(|c| is_webpo_client(c)) else {
            return RequestOrResponse::Request(req);
        };
        if matches!(route, Route::Media { sabr: true, .. }) {
            // SABR tokens travel in the protobuf body, never in the signed URL.
            return RequestOrResponse::Request(req);
        }
        let binding = self
            .playback_of(pq)
            .map(|p| Binding::Video(p.video_id))
            .unwrap_or(Binding::Unknown);
        let token = match self.token_for(binding, client).await {
            Ok(t) => t,
            Err(reason) => return give_up(self.shared.settings.strict, req, host, &reason),
        };
        let new_pq = match route {
            Route::Media { form, sabr, .. } => rewrite_media(pq, *form, *sabr, &token),
            Route::Manifest { kind, .. } => rewrite_manifest(pq, *kind, &token),
            _ => unreachable!("rewrite_url is only called for media and manifest routes"),
        };
        let Some(uri) = with_path_and_query(req.uri(), &new_pq) else {
            return give_up(
                self.shared.settings.strict,
                req,
                host,
                "rewritten URL is not a valid URI",
            );
        };
        *req.uri_mut() = uri;
        tracing::info!(%host, %client, token = %token.redacted(), "media: set pot");
        self.note = Some(Note::Media {
            host: host.to_string(),
            path: req.uri().path().to_string(),
            token,
        });
        RequestOrResponse::Request(req)
    }

    async fn rewrite_player(&mut self, req: Request<Body>, host: &str) -> RequestOrResponse {
        let settings = &self.shared.settings;
        let strict = settings.strict;
        let cap = settings.max_body_bytes;
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > cap as u64) {
            return give_up(
                strict,
                req,
                host,
                &format!("player body over the {cap}-byte cap"),
            );
        }
        let (parts, body) = req.into_parts();
        let bytes = match buffer_to_cap(body, cap).await {
            Ok(Buffered::Complete(b)) => b,
            Ok(Buffered::TooLarge(body)) => {
                let req = Request::from_parts(parts, body);
                return give_up(
                    strict,
                    req,
                    host,
                    &format!("player body over the {cap}-byte cap"),
                );
            }
            Err(e) => {
                tracing::warn!(%host, error = %e, "player request body could not be read");
                return RequestOrResponse::Response(text_response(
                    StatusCode::BAD_REQUEST,
                    format!("potproxy: {e}\n"),
                ));
            }
        };
        let original = |parts| Request::from_parts(parts, Body::from(bytes.clone()));
        let encoding = parts
            .headers
            .get(CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let decoded: Bytes = match &encoding {
            None => bytes.clone(),
            Some(enc) => match decode(enc, &bytes, cap) {
                Ok(d) => d.into(),
                Err(e) => return give_up(strict, original(parts), host, &e.to_string()),
            },
        };
        let mut player = match PlayerRequest::parse(&decoded) {
            Ok(p) => p,
            Err(e) => return give_up(strict, original(parts), host, &e.to_string()),
        };
        if let Some(client) = player.client_name().filter(|c| is_webpo_client(c)) {
            self.note = Some(Note::Player {
                video: player.video_id().map(str::to_string),
                client: client.to_string(),
                visitor: player.visitor_data().map(str::to_string).or_else(|| {
                    parts
                        .headers
                        .get("x-goog-visitor-id")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                }),
            });
        }
        if let PlayerAction::Leave(why) =
            player.decide(&settings.sentinels, settings.always_replace)
        {
            tracing::debug!(%host, client = ?player.client_name(), why, "player: left as is");
            return RequestOrResponse::Request(original(parts));
        }
        let client = player.client_name().unwrap_or_default().to_string();
        let binding = player_binding(&player, &client, &parts.headers);
        let token = match self.token_for(binding, &client).await {
            Ok(t) => t,
            Err(reason) => return give_up(strict, original(parts), host, &reason),
        };
        player.set_token(&token);
        let new_body = player.to_bytes();
        let mut parts = parts;
        parts.headers.remove(CONTENT_ENCODING);
        parts.headers.remove(TRANSFER_ENCODING);
        parts
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from(new_body.len()));
        tracing::info!(
            %host,
            %client,
            video = player.video_id().unwrap_or("-"),
            token = %token.redacted(),
            "player: set serviceIntegrityDimensions.poToken"
        );
        RequestOrResponse::Request(Request::from_parts(parts, Body::from(new_body)))
    }
}

/// Player tokens are bound to the video id, except WEB_REMIX, whose every token is bound to the
/// session (visitor data in the body, else the `X-Goog-Visitor-Id` header).
fn player_binding(player: &PlayerRequest, client: &str, headers: &http::HeaderMap) -> Binding {
    if client == "WEB_REMIX" {
        let visitor = player.visitor_data().map(str::to_string).or_else(|| {
            headers
                .get("x-goog-visitor-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        });
        return visitor.map(Binding::Session).unwrap_or(Binding::Unknown);
    }
    player
        .video_id()
        .map(|v| Binding::Video(v.to_string()))
        .unwrap_or(Binding::Unknown)
}

impl HttpHandler for PotHandler {
    async fn handle_request(
        &mut self,
        _ctx: &HttpContext,
        req: Request<Body>,
    ) -> RequestOrResponse {
        if req.method() == Method::CONNECT {
            return self.on_connect(req).await;
        }
        self.on_request(req).await
    }

    async fn handle_response(&mut self, _ctx: &HttpContext, res: Response<Body>) -> Response<Body> {
        match self.note.take() {
            Some(Note::Player {
                video,
                client,
                visitor,
            }) if res.status().is_success() => {
                self.learn_from_player(res, video, client, visitor).await
            }
            Some(Note::Media { host, path, token }) if res.status() == StatusCode::FORBIDDEN => {
                tracing::warn!(
                    %host,
                    %path,
                    token = %token.redacted(),
                    "upstream answered 403 to a request carrying the proxy's token"
                );
                res
            }
            _ => res,
        }
    }

    async fn handle_error(
        &mut self,
        _ctx: &HttpContext,
        err: hyper_util::client::legacy::Error,
    ) -> Response<Body> {
        let chain = crate::errtext::error_chain(&err);
        tracing::warn!(error = %chain, "upstream request failed");
        text_response(
            StatusCode::BAD_GATEWAY,
            format!("potproxy: upstream request failed: {chain}\n"),
        )
    }

    /// Reached only for CONNECTs `on_connect` passed on: listed hosts and IP literals.
    async fn should_intercept_connect(&mut self, _ctx: &HttpContext, _req: &Request<Body>) -> bool {
        true
    }

    /// The SNI decides: a listed name is decrypted, anything else (or no SNI) is tunnelled.
    async fn should_intercept_tls(
        &mut self,
        _ctx: &HttpContext,
        hello: rustls::server::ClientHello<'_>,
    ) -> bool {
        hello
            .server_name()
            .is_some_and(|name| self.shared.policy.is_intercepted(name))
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

    #[test]
    fn web_remix_player_token_is_session_bound() {
        let p = PlayerRequest::parse(
            br#"{"context":{"client":{"clientName":"WEB_REMIX","visitorData":"CgtAAA"}},"videoId":"abcdefghijk"}"#,
        )
        .unwrap();
        assert_eq!(
            player_binding(&p, "WEB_REMIX", &http::HeaderMap::new()),
            Binding::Session("CgtAAA".into())
        );
        assert_eq!(
            player_binding(&p, "WEB", &http::HeaderMap::new()),
            Binding::Video("abcdefghijk".into())
        );
    }
}
