//! googlevideo requests and captions: the token goes into the URL (query `pot`, `/pot/` path
//! segments, manifests, `/api/timedtext`) or, for SABR, into the protobuf body. The binding
//! comes from the player response the URL was learned from and the session's regime. On the
//! way back: a 403 to a GET/HEAD that carried the proxy's token is retried once with the other
//! regime's token before the client sees it, and UMP streams are watched for
//! STREAM_PROTECTION_STATUS 3, the in-band rejection.

use http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use hudsucker::{Body, RequestOrResponse};

use super::{Note, PotHandler, give_up, with_path_and_query};
use crate::bindings::{Regime, TokenContext, binding_for};
use crate::body::{Buffered, buffer_to_cap};
use crate::classify::{Route, is_webpo_client, split_path_query, url_param};
use crate::learn::session::{PlaybackInfo, media_url_keys};
use crate::rewrite::media::{rewrite_manifest, rewrite_media, set_caption_query};
use crate::rewrite::sabr;
use crate::token::{Binding, Token};
use crate::tokens::TokenRequest;
use crate::ump::Watched;

/// What the response side needs to judge and, if rejected, retry a media request.
#[derive(Debug, Clone)]
pub struct MediaNote {
    host: String,
    method: Method,
    /// The request target before the token went in.
    original_pq: String,
    uri: Uri,
    headers: HeaderMap,
    route: Route,
    client: String,
    playback: Option<PlaybackInfo>,
    regime: Regime,
    binding: Binding,
    token: Token,
}

impl MediaNote {
    fn session(&self) -> Option<String> {
        self.playback
            .as_ref()
            .and_then(|p| p.identity().session_binding().map(str::to_string))
    }
}

/// The `pot` a media or manifest URL already carries (query or path form), URL-decoded.
fn existing_pot(pq: &str) -> Option<String> {
    let (path, query) = split_path_query(pq);
    url_param(path, query, "pot")
}

impl PotHandler {
    /// The playback a media or caption URL belongs to, as learned from its player response.
    fn playback_of(&self, pq: &str) -> Option<PlaybackInfo> {
        let (path, query) = split_path_query(pq);
        let (ei, id, _) = media_url_keys(path, query);
        self.shared.sessions.lookup(ei.as_deref(), id.as_deref())
    }

    /// The GVS binding for a media URL of `client` under `regime`.
    fn gvs_binding(
        &self,
        playback: Option<&PlaybackInfo>,
        client: &str,
        regime: Regime,
    ) -> Binding {
        let who = playback.map(PlaybackInfo::identity).unwrap_or_default();
        binding_for(
            TokenContext::Gvs,
            client,
            playback.map(|p| p.video_id.as_str()),
            &who,
            regime,
        )
    }

    pub(super) async fn rewrite_media_request(
        &mut self,
        mut req: Request<Body>,
        host: &str,
        pq: &str,
        route: &Route,
    ) -> RequestOrResponse {
        let strict = self.shared.settings.strict;
        let Some(client) = route
            .url_client()
            .filter(|c| is_webpo_client(c))
            .map(str::to_string)
        else {
            return RequestOrResponse::Request(req);
        };
        if let Some(own) = existing_pot(pq) {
            let settings = &self.shared.settings;
            if !crate::token::is_sentinel(&own, &settings.sentinels) && !settings.always_replace {
                tracing::debug!(%host, %client, "media: client sent its own token");
                return RequestOrResponse::Request(req);
            }
        }
        let playback = self.playback_of(pq);
        let session = playback
            .as_ref()
            .and_then(|p| p.identity().session_binding().map(str::to_string));
        let regime = self.shared.regimes.get(session.as_deref(), &client);
        let binding = self.gvs_binding(playback.as_ref(), &client, regime);
        let sabr = matches!(route, Route::Media { sabr: true, .. });
        let note = |token: Token, binding: Binding, req: &Request<Body>| MediaNote {
            host: host.to_string(),
            method: req.method().clone(),
            original_pq: pq.to_string(),
            uri: req.uri().clone(),
            headers: req.headers().clone(),
            route: route.clone(),
            client: client.clone(),
            playback: playback.clone(),
            regime,
            binding,
            token,
        };
        if sabr {
            if req.method() != Method::POST {
                return RequestOrResponse::Request(req);
            }
            return self.rewrite_sabr(req, host, binding, &client, note).await;
        }
        let token = match self.token_for(binding.clone(), &client).await {
            Ok(t) => t,
            Err(reason) => return give_up(strict, req, host, &reason),
        };
        let new_pq = match route {
            Route::Media { form, .. } => rewrite_media(pq, *form, false, &token),
            Route::Manifest { kind, .. } => rewrite_manifest(pq, *kind, &token),
            _ => unreachable!("only media and manifest routes come here"),
        };
        let Some(uri) = with_path_and_query(req.uri(), &new_pq) else {
            return give_up(strict, req, host, "rewritten URL is not a valid URI");
        };
        let n = note(token.clone(), binding, &req);
        *req.uri_mut() = uri;
        tracing::info!(%host, %client, ?regime, token = %token.redacted(), "media: set pot");
        self.note = Some(Note::Media(Box::new(n)));
        RequestOrResponse::Request(req)
    }

    /// SABR: the token goes into `streamer_context.po_token` of the protobuf body.
    async fn rewrite_sabr(
        &mut self,
        req: Request<Body>,
        host: &str,
        binding: Binding,
        client: &str,
        note: impl FnOnce(Token, Binding, &Request<Body>) -> MediaNote,
    ) -> RequestOrResponse {
        let strict = self.shared.settings.strict;
        let cap = self.shared.settings.max_body_bytes;
        let (mut parts, body) = req.into_parts();
        let bytes = match buffer_to_cap(body, cap).await {
            Ok(Buffered::Complete(b)) => b,
            Ok(Buffered::TooLarge(body)) => {
                return give_up(
                    strict,
                    Request::from_parts(parts, body),
                    host,
                    "SABR body over the cap",
                );
            }
            Err(e) => {
                return RequestOrResponse::Response(super::text_response(
                    StatusCode::BAD_REQUEST,
                    format!("potproxy: {e}\n"),
                ));
            }
        };
        let original = |parts| Request::from_parts(parts, Body::from(bytes.clone()));
        if let Some(existing) = sabr::po_token(&bytes).filter(|t| !t.is_empty()) {
            let sentinel = crate::token::is_sentinel(
                Token::from_bytes(&existing).as_str(),
                &self.shared.settings.sentinels,
            );
            if !sentinel && !self.shared.settings.always_replace {
                tracing::debug!(%host, "SABR: client sent its own token");
                return RequestOrResponse::Request(original(parts));
            }
        }
        let token = match self.token_for(binding.clone(), client).await {
            Ok(t) => t,
            Err(reason) => return give_up(strict, original(parts), host, &reason),
        };
        let Some(new_body) = sabr::set_po_token(&bytes, &token.bytes()) else {
            return give_up(strict, original(parts), host, "SABR body is not protobuf");
        };
        parts.headers.remove(TRANSFER_ENCODING);
        parts
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from(new_body.len()));
        let req = Request::from_parts(parts, Body::from(new_body));
        let n = note(token.clone(), binding, &req);
        tracing::info!(%host, %client, token = %token.redacted(), "SABR: set streamer_context.po_token");
        self.note = Some(Note::Media(Box::new(n)));
        RequestOrResponse::Request(req)
    }

    /// Captions: `pot` (video-bound; WEB_REMIX: session), `potc=1`, `c=<client>`.
    pub(super) async fn rewrite_subtitles(
        &mut self,
        mut req: Request<Body>,
        host: &str,
        pq: &str,
        route: &Route,
    ) -> RequestOrResponse {
        let Route::Subtitles { client, video } = route else {
            return RequestOrResponse::Request(req);
        };
        let playback = self.playback_of(pq);
        let client = client
            .clone()
            .or_else(|| playback.as_ref().and_then(|p| p.client.clone()));
        let Some(client) = client.filter(|c| is_webpo_client(c)) else {
            return RequestOrResponse::Request(req);
        };
        let who = playback
            .as_ref()
            .map(PlaybackInfo::identity)
            .unwrap_or_default();
        let video = video
            .clone()
            .or_else(|| playback.as_ref().map(|p| p.video_id.clone()));
        let regime = self.shared.regimes.get(who.session_binding(), &client);
        let binding = binding_for(TokenContext::Subs, &client, video.as_deref(), &who, regime);
        let token = match self.token_for(binding, &client).await {
            Ok(t) => t,
            Err(reason) => return give_up(self.shared.settings.strict, req, host, &reason),
        };
        let (path, query) = split_path_query(pq);
        let q = set_caption_query(query.unwrap_or(""), &token, &client);
        if let Some(uri) = with_path_and_query(req.uri(), &format!("{path}?{q}")) {
            *req.uri_mut() = uri;
            tracing::info!(%host, %client, token = %token.redacted(), "captions: set pot");
        }
        RequestOrResponse::Request(req)
    }

    pub(super) async fn on_media_response(
        &self,
        res: Response<Body>,
        note: MediaNote,
    ) -> Response<Body> {
        let session = note.session();
        let status = res.status();
        if status == StatusCode::FORBIDDEN {
            tracing::warn!(host = %note.host, client = %note.client, regime = ?note.regime, token = %note.token.redacted(), "upstream answered 403 to a request carrying the proxy's token");
            if note.method == Method::GET || note.method == Method::HEAD {
                if let Some(retried) = self.retry_other_regime(&note).await {
                    return retried;
                }
            }
            return res;
        }
        if status.is_success() {
            if let Some(s) = &session {
                self.shared.regimes.observe(s, &note.client, note.regime);
            }
        }
        let is_ump = res
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/vnd.yt-ump"));
        if !is_ump {
            return res;
        }
        // Watch the stream for the in-band rejection without holding back a byte.
        let shared = self.shared.clone();
        let on_status = move |status: u64| {
            if status < 3 {
                return;
            }
            tracing::warn!(client = %note.client, regime = ?note.regime, "googlevideo: stream protection status {status}; switching regime for the next request");
            if let Some(s) = &session {
                shared.regimes.observe(s, &note.client, note.regime.other());
            }
            shared
                .tokens
                .cache()
                .forget(&TokenRequest::new(note.binding.clone()));
        };
        let (parts, body) = res.into_parts();
        let watched = Watched::new(body, Box::new(on_status));
        Response::from_parts(parts, Body::from(BoxBody::new(watched)))
    }

    /// Re-issues a rejected GET/HEAD with the other regime's token; `None` when there is no
    /// other binding to try or the retry could not be sent.
    async fn retry_other_regime(&self, note: &MediaNote) -> Option<Response<Body>> {
        let other = note.regime.other();
        let binding = self.gvs_binding(note.playback.as_ref(), &note.client, other);
        if binding == Binding::Unknown || binding == note.binding {
            return None;
        }
        let token = self.token_for(binding, &note.client).await.ok()?;
        let new_pq = match &note.route {
            Route::Media { form, .. } => rewrite_media(&note.original_pq, *form, false, &token),
            Route::Manifest { kind, .. } => rewrite_manifest(&note.original_pq, *kind, &token),
            _ => return None,
        };
        let uri = with_path_and_query(&note.uri, &new_pq)?;
        let res = match self
            .shared
            .http
            .stream(note.method.clone(), uri, note.headers.clone())
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "retry with the other regime could not be sent");
                return None;
            }
        };
        let ok = res.status().is_success();
        tracing::info!(client = %note.client, from = ?note.regime, to = ?other, status = %res.status(), "retried a rejected media request with the other regime's token");
        if ok {
            if let Some(s) = note.session() {
                self.shared.regimes.observe(&s, &note.client, other);
            }
        }
        Some(res.map(Body::from))
    }
}
