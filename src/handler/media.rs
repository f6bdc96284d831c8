//! googlevideo requests and captions: the token goes into the URL (query `pot`, `/pot/` path
//! segments, manifests, `/api/timedtext`) or, for SABR, into the protobuf body. The binding
//! comes from the player response the URL was learned from and the session's regime. On the
//! way back: a 403 to a GET/HEAD that carried the proxy's token is retried once with the other
//! regime's token before the client sees it, and UMP streams are watched for
//! STREAM_PROTECTION_STATUS 3, the in-band rejection.

use http::header::CONTENT_TYPE;
use http::{HeaderMap, Method, Request, Response, Uri};
use http_body_util::combinators::BoxBody;
use hudsucker::{Body, RequestOrResponse};

use super::plan::{
    MediaVerdict, Pass, Placement, Plan, apply_url, judge_media_response, media_identity,
    plan_captions, plan_media, sabr_choice,
};
use super::{Note, PotHandler, with_path_and_query};
use crate::bindings::Regime;
use crate::classify::{Route, split_path_query};
use crate::learn::session::{PlaybackInfo, media_url_keys};
use crate::rewrite::sabr;
use crate::token::{Binding, Token, TokenChoice};
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
    plan: Plan,
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

/// A media request between its plan and its token: what the note and the apply stage need.
struct Planned<'a> {
    host: &'a str,
    pq: &'a str,
    plan: Plan,
    playback: Option<PlaybackInfo>,
    regime: Regime,
    binding: Binding,
}

impl Planned<'_> {
    fn note(&self, token: &Token, req: &Request<Body>) -> MediaNote {
        MediaNote {
            host: self.host.to_string(),
            method: req.method().clone(),
            original_pq: self.pq.to_string(),
            uri: req.uri().clone(),
            headers: req.headers().clone(),
            plan: self.plan.clone(),
            playback: self.playback.clone(),
            regime: self.regime,
            binding: self.binding.clone(),
            token: token.clone(),
        }
    }
}

impl PotHandler {
    /// The playback a media or caption URL belongs to, as learned from its player response.
    fn playback_of(&self, pq: &str) -> Option<PlaybackInfo> {
        let (path, query) = split_path_query(pq);
        let (ei, id, _) = media_url_keys(path, query);
        self.shared.sessions.lookup(ei.as_deref(), id.as_deref())
    }

    /// plan -> context (playback, regime) -> token -> apply (URL, or the SABR body) -> forward.
    pub(super) async fn on_media_request(
        &mut self,
        mut req: Request<Body>,
        host: &str,
        pq: &str,
        route: &Route,
    ) -> RequestOrResponse {
        let plan = match plan_media(route, req.method(), pq, &self.shared.settings) {
            Ok(plan) => plan,
            Err(Pass(why)) => {
                if let Some(why) = why {
                    tracing::debug!(%host, client = ?route.url_client(), "{why}");
                }
                return RequestOrResponse::Request(req);
            }
        };
        let playback = self.playback_of(pq);
        let (who, video) = media_identity(playback.as_ref());
        let regime = self.regime_for(&who, &plan.client);
        let binding = plan.binding(&who, video, regime);
        let planned = Planned {
            host,
            pq,
            plan,
            playback,
            regime,
            binding,
        };
        if planned.plan.place == Placement::SabrBody {
            return self.on_sabr_request(req, planned).await;
        }
        let token = match self.token_for(planned.binding.clone()).await {
            Ok(t) => t,
            Err(e) => return self.give_up(req, host, &crate::errtext::error_chain(&e)),
        };
        let client = planned.plan.client.as_str();
        let uri = apply_url(pq, planned.plan.place, &token, client)
            .and_then(|new_pq| with_path_and_query(req.uri(), &new_pq));
        let Some(uri) = uri else {
            return self.give_up(req, host, "rewritten URL is not a valid URI");
        };
        let note = planned.note(&token, &req);
        *req.uri_mut() = uri;
        tracing::info!(%host, %client, ?regime, token = %token.redacted(), "media: set pot");
        if let Some(ex) = self.observed() {
            ex.rewrote("media");
        }
        self.note = Some(Note::Media(Box::new(note)));
        RequestOrResponse::Request(req)
    }

    /// SABR: read -> the body's own token (plan) -> token -> `streamer_context.po_token` (apply).
    async fn on_sabr_request(
        &mut self,
        req: Request<Body>,
        planned: Planned<'_>,
    ) -> RequestOrResponse {
        let host = planned.host;
        let client = planned.plan.client.as_str();
        if let Some(ex) = self.observed() {
            ex.kind("sabr");
        }
        let whole = match self.read_request(req, host, "SABR").await {
            Ok(w) => w,
            Err(out) => return out,
        };
        if sabr_choice(&whole.raw, &self.shared.settings) == TokenChoice::KeepClients {
            tracing::debug!(%host, "SABR: client sent its own token");
            if let Some(ex) = self.observed() {
                ex.outcome("kept");
            }
            return RequestOrResponse::Request(whole.unchanged());
        }
        let token = match self.token_for(planned.binding.clone()).await {
            Ok(t) => t,
            Err(e) => {
                return self.give_up(whole.unchanged(), host, &crate::errtext::error_chain(&e));
            }
        };
        let Some(new_body) = sabr::set_po_token(&whole.raw, &token.bytes()) else {
            return self.give_up(whole.unchanged(), host, "SABR body is not protobuf");
        };
        let req = whole.replaced(new_body);
        let note = planned.note(&token, &req);
        tracing::info!(%host, %client, token = %token.redacted(), "SABR: set streamer_context.po_token");
        if let Some(ex) = self.observed() {
            ex.rewrote("sabr");
        }
        self.note = Some(Note::Media(Box::new(note)));
        RequestOrResponse::Request(req)
    }

    /// Captions: `pot` (video-bound; WEB_REMIX: session), `potc=1`, `c=<client>`.
    pub(super) async fn on_caption_request(
        &mut self,
        mut req: Request<Body>,
        host: &str,
        pq: &str,
        route: &Route,
    ) -> RequestOrResponse {
        let playback = self.playback_of(pq);
        let Ok((plan, who, video)) = plan_captions(route, playback.as_ref()) else {
            return RequestOrResponse::Request(req);
        };
        let regime = self.regime_for(&who, &plan.client);
        let binding = plan.binding(&who, video.as_deref(), regime);
        let token = match self.token_for(binding).await {
            Ok(t) => t,
            Err(e) => return self.give_up(req, host, &crate::errtext::error_chain(&e)),
        };
        let client = plan.client.as_str();
        let uri = apply_url(pq, plan.place, &token, client)
            .and_then(|new_pq| with_path_and_query(req.uri(), &new_pq));
        if let Some(uri) = uri {
            *req.uri_mut() = uri;
            tracing::info!(%host, %client, token = %token.redacted(), "captions: set pot");
            if let Some(ex) = self.observed() {
                ex.rewrote("captions");
            }
        }
        RequestOrResponse::Request(req)
    }

    pub(super) async fn on_media_response(
        &self,
        res: Response<Body>,
        note: MediaNote,
    ) -> Response<Body> {
        let session = note.session();
        let content_type = res
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        match judge_media_response(res.status(), &note.method, content_type) {
            MediaVerdict::Rejected { retry } => {
                tracing::warn!(host = %note.host, client = %note.plan.client, regime = ?note.regime, token = %note.token.redacted(), "upstream answered 403 to a request carrying the proxy's token");
                if retry {
                    if let Some(retried) = self.retry_other_regime(&note).await {
                        return retried;
                    }
                }
                return res;
            }
            MediaVerdict::Delivered { accepted, ump } => {
                if let Some(s) = session.as_deref().filter(|_| accepted) {
                    self.shared
                        .regimes
                        .observe(s, &note.plan.client, note.regime);
                }
                if !ump {
                    return res;
                }
            }
        }
        // Watch the stream for the in-band rejection without holding back a byte.
        let shared = self.shared.clone();
        let on_status = move |status: u64| {
            if status < 3 {
                return;
            }
            tracing::warn!(client = %note.plan.client, regime = ?note.regime, "googlevideo: stream protection status {status}; switching regime for the next request");
            if let Some(s) = &session {
                shared
                    .regimes
                    .observe(s, &note.plan.client, note.regime.other());
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
        let (who, video) = media_identity(note.playback.as_ref());
        let binding = note.plan.binding(&who, video, other);
        if binding == Binding::Unknown || binding == note.binding {
            return None;
        }
        let token = self.token_for(binding).await.ok()?;
        let new_pq = apply_url(
            &note.original_pq,
            note.plan.place,
            &token,
            &note.plan.client,
        )?;
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
        tracing::info!(client = %note.plan.client, from = ?note.regime, to = ?other, status = %res.status(), "retried a rejected media request with the other regime's token");
        if ok {
            if let Some(s) = note.session() {
                self.shared.regimes.observe(&s, &note.plan.client, other);
            }
        }
        Some(res.map(Body::from))
    }
}
