//! googlevideo requests and captions: the token goes into the URL (query `pot`, `/pot/` path
//! segments, manifests, `/api/timedtext`) or, for SABR, into the protobuf body. The binding
//! comes from the player response the URL was learned from and the session's regime. On the
//! way back: a 403 to a GET/HEAD that carried the proxy's token is retried once with the other
//! regime's token before the client sees it, and UMP streams are watched for
//! STREAM_PROTECTION_STATUS 2/3, the in-band rejection. Once the regime is known good, a refusal
//! is the token's: it is reported to the token service (its minter dropped, its source set
//! aside when it keeps being refused) and the request re-issued with a fresh token; a GET whose
//! body breaks after the client has the headers is resumed ([`crate::heal::resume`]).

use std::sync::Arc;

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
use crate::heal::resume::{Refetch, Resuming};
use crate::heal::{self, MAX_RESUME_ATTEMPTS, Signal, Span};
use crate::learn::session::{PlaybackInfo, media_url_keys};
use crate::rewrite::sabr;
use crate::token::{Binding, Token, TokenChoice};
use crate::tokens::{Issued, TokenRequest};
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
    /// The token with its provenance, so a refusal is attributed to its source and minter.
    issued: Option<Issued>,
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
            issued: None,
        }
    }
}

impl PotHandler {
    /// Sends the request of `note` again, its token replaced by `token` (`what` names the
    /// attempt in the log); `None` when the URL cannot be rebuilt or the request not sent.
    async fn reissue(
        &self,
        note: &MediaNote,
        token: &Token,
        what: &str,
    ) -> Option<http::Response<hyper::body::Incoming>> {
        let new_pq = apply_url(&note.original_pq, note.plan.place, token, &note.plan.client)?;
        let uri = with_path_and_query(&note.uri, &new_pq)?;
        match self
            .shared
            .http
            .stream(note.method.clone(), uri, note.headers.clone())
            .await
        {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(error = %e, "{what} could not be sent");
                None
            }
        }
    }

    /// The playback a media or caption URL belongs to, as learned from its player response.
    async fn playback_of(&self, pq: &str) -> Option<PlaybackInfo> {
        let (path, query) = split_path_query(pq);
        let (ei, id, _) = media_url_keys(path, query);
        self.shared
            .sessions
            .lookup_shared(ei.as_deref(), id.as_deref())
            .await
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
        let playback = self.playback_of(pq).await;
        let (who, video) = media_identity(playback.as_ref());
        if let Some(ex) = self.observed() {
            ex.video(video);
        }
        let regime = self.regime_for(&who, &plan.client).await;
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
        let issued = match self.issued_for(planned.binding.clone()).await {
            Ok(t) => t,
            Err(e) => return self.give_up(req, host, &crate::errtext::error_chain(&e)),
        };
        if let Some(ex) = self.observed() {
            ex.token_from(&planned.binding, Some(&issued));
        }
        let token = issued.token.clone();
        let client = planned.plan.client.as_str();
        let uri = apply_url(pq, planned.plan.place, &token, client)
            .and_then(|new_pq| with_path_and_query(req.uri(), &new_pq));
        let Some(uri) = uri else {
            return self.give_up(req, host, "rewritten URL is not a valid URI");
        };
        let mut note = planned.note(&token, &req);
        note.issued = Some(issued);
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
        let issued = match self.issued_for(planned.binding.clone()).await {
            Ok(t) => t,
            Err(e) => {
                return self.give_up(whole.unchanged(), host, &crate::errtext::error_chain(&e));
            }
        };
        if let Some(ex) = self.observed() {
            ex.token_from(&planned.binding, Some(&issued));
        }
        let token = issued.token.clone();
        let Some(new_body) = sabr::set_po_token(&whole.raw, &token.bytes()) else {
            return self.give_up(whole.unchanged(), host, "SABR body is not protobuf");
        };
        let req = whole.replaced(new_body);
        let mut note = planned.note(&token, &req);
        note.issued = Some(issued);
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
        let playback = self.playback_of(pq).await;
        let Ok((plan, who, video)) = plan_captions(route, playback.as_ref()) else {
            return RequestOrResponse::Request(req);
        };
        let regime = self.regime_for(&who, &plan.client).await;
        let binding = plan.binding(&who, video.as_deref(), regime);
        if let Some(ex) = self.observed() {
            ex.video(video.as_deref());
            ex.token_from(&binding, None);
        }
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
        // Before this response teaches anything: a UMP 200 is not yet an acceptance.
        let confirmed = self.regime_confirmed(&note);
        let content_type = res
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        match judge_media_response(res.status(), &note.method, content_type) {
            MediaVerdict::Rejected { retry } => {
                if let Some(ex) = self.observed() {
                    ex.refused_token();
                }
                tracing::warn!(host = %note.host, client = %note.plan.client, regime = ?note.regime, token = %note.token.redacted(), "upstream answered 403 to a request carrying the proxy's token");
                if retry && heal::blame(&Signal::Forbidden, confirmed, false) == heal::Blame::Token
                {
                    // The binding is known good: the token itself was refused.
                    if let Some(healed) = self.retry_fresh_token(&note).await {
                        return healed;
                    }
                    return res;
                }
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
                    let issued = note.issued.clone();
                    return self.resuming(res, &note, issued);
                }
            }
        }
        // Watch the stream for the in-band rejection without holding back a byte.
        let shared = self.shared.clone();
        let exchange = self.exchange.clone();
        let mut handled = false;
        let on_status = move |status: u64| {
            let Some(signal) = heal::protection_signal(status) else {
                return;
            };
            if handled {
                return;
            }
            handled = true;
            if let Some(ex) = &exchange {
                ex.refused_token();
            }
            // Handled once per stream, at its first refusal: a 2 before any 3 blames the token.
            let req = TokenRequest::new(note.binding.clone());
            if heal::blame(&signal, confirmed, false) == heal::Blame::Token {
                tracing::warn!(client = %note.plan.client, "googlevideo: stream protection status {status}; the token is refused, the next request gets a fresh one");
                match &note.issued {
                    Some(issued) => {
                        shared.tokens.refused(&req, issued, &signal.reason());
                    }
                    None => shared.tokens.forget(&req),
                }
                return;
            }
            tracing::warn!(client = %note.plan.client, regime = ?note.regime, "googlevideo: stream protection status {status}; switching regime for the next request");
            if let Some(s) = &session {
                shared
                    .regimes
                    .observe(s, &note.plan.client, note.regime.other());
            }
            shared.tokens.forget(&req);
        };
        let (parts, body) = res.into_parts();
        let watched = Watched::new(body, Box::new(on_status));
        Response::from_parts(parts, Body::from(BoxBody::new(watched)))
    }

    /// Whether googlevideo already accepted this request's regime for its session (so a
    /// refusal is the token's, not the binding's). Unbound requests have no other binding.
    fn regime_confirmed(&self, note: &MediaNote) -> bool {
        match note.session() {
            Some(s) => self.shared.regimes.observed(&s, &note.plan.client) == Some(note.regime),
            None => true,
        }
    }

    /// A 403 to a request whose binding is right: the token is reported refused (its minter
    /// dropped, its source set aside when it keeps being refused) and the request re-issued
    /// with a fresh token, a bounded number of times.
    async fn retry_fresh_token(&self, note: &MediaNote) -> Option<Response<Body>> {
        let req = TokenRequest::new(note.binding.clone());
        let mut refused = note.issued.clone()?;
        for attempt in 1..=MAX_RESUME_ATTEMPTS {
            self.shared
                .tokens
                .refused(&req, &refused, &Signal::Forbidden.reason());
            let issued = match self.shared.tokens.issue(&req).await {
                Ok(i) => i,
                Err(e) => {
                    tracing::warn!(error = %crate::errtext::error_chain(&e), "no fresh token for a refused media request");
                    return None;
                }
            };
            if issued.token == refused.token {
                tracing::warn!(client = %note.plan.client, "no other token to try for a refused media request");
                return None;
            }
            let res = self
                .reissue(note, &issued.token, "re-issued media request")
                .await?;
            tracing::info!(client = %note.plan.client, attempt, status = %res.status(), source = ?issued.provenance.as_ref().map(|p| p.source), "re-issued a refused media request with a fresh token");
            if let Some(ex) = self.observed() {
                ex.token_from(&note.binding, Some(&issued));
                if res.status() == http::StatusCode::FORBIDDEN {
                    ex.refused_token();
                }
            }
            if res.status() != http::StatusCode::FORBIDDEN {
                return Some(self.resuming(res.map(Body::from), note, Some(issued)));
            }
            refused = issued;
        }
        tracing::warn!(client = %note.plan.client, "media request refused with every fresh token; the client gets the 403");
        None
    }

    /// Wraps a successful GET's body so a break mid-body is resumed with a fresh token; other
    /// responses pass as they are.
    fn resuming(
        &self,
        res: Response<Body>,
        note: &MediaNote,
        issued: Option<Issued>,
    ) -> Response<Body> {
        let Some(issued) = issued else {
            return res;
        };
        if note.method != Method::GET || !matches!(note.plan.place, Placement::MediaUrl(_)) {
            return res;
        }
        let header = |name: http::header::HeaderName| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let Some(len) = header(http::header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok())
        else {
            return res;
        };
        let (path, query) = split_path_query(&note.original_pq);
        let query_range = crate::classify::url_param(path, query, "range");
        let span = heal::response_span(
            query_range.as_deref(),
            path.contains("/range/"),
            res.status(),
            header(http::header::CONTENT_RANGE).as_deref(),
        );
        let Some(span) = span.filter(|_| len > 0) else {
            return res;
        };
        let refetch = Arc::new(MediaRefetch {
            shared: self.shared.clone(),
            note: note.clone(),
            span,
            len,
            current: Arc::new(std::sync::Mutex::new(issued)),
            exchange: self.exchange.clone(),
        });
        let what = format!("{} itag media", note.plan.client);
        let (parts, body) = res.into_parts();
        let body = Resuming::new(body, len, refetch, MAX_RESUME_ATTEMPTS, what);
        Response::from_parts(parts, Body::from(BoxBody::new(body)))
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
        let res = self
            .reissue(note, &token, "retry with the other regime")
            .await?;
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

/// Fetches the remainder of a broken media response with a fresh token (see
/// [`crate::heal::resume`]).
struct MediaRefetch {
    shared: Arc<super::Shared>,
    note: MediaNote,
    span: Span,
    len: u64,
    /// The token of the latest request, blamed when it is refused.
    current: Arc<std::sync::Mutex<Issued>>,
    /// The exchange being resumed, for the live page's counts.
    exchange: Option<Arc<crate::observe::Exchange>>,
}

impl Refetch for MediaRefetch {
    fn refetch(
        &self,
        signal: Signal,
        delivered: u64,
    ) -> futures::future::BoxFuture<'static, Result<Body, Signal>> {
        let shared = self.shared.clone();
        let note = self.note.clone();
        let req = TokenRequest::new(note.binding.clone());
        let refused = self.current.lock().expect("token lock").clone();
        let c = heal::continuation(self.span, self.len, delivered);
        let slot = self.current.clone();
        if let Some(ex) = &self.exchange {
            ex.resumed();
            if signal.refuses_token() {
                ex.refused_token();
            }
        }
        let fut = async move {
            if signal.refuses_token() {
                shared.tokens.refused(&req, &refused, &signal.reason());
            }
            let c = c.ok_or_else(|| Signal::Unusable("nothing left to fetch".into()))?;
            let issued = shared.tokens.issue(&req).await.map_err(|e| {
                Signal::Unusable(format!(
                    "no token for the continuation: {}",
                    crate::errtext::error_chain(&e)
                ))
            })?;
            *slot.lock().expect("token lock") = issued.clone();
            let pq = match &c.query_range {
                Some(r) => heal::with_query_range(&note.original_pq, r),
                None => note.original_pq.clone(),
            };
            let uri = apply_url(&pq, note.plan.place, &issued.token, &note.plan.client)
                .and_then(|new_pq| with_path_and_query(&note.uri, &new_pq))
                .ok_or_else(|| Signal::Unusable("continuation URL is not a valid URI".into()))?;
            let mut headers = note.headers.clone();
            headers.remove(http::header::RANGE);
            headers.remove(http::header::IF_RANGE);
            if let Some(r) = &c.range_header {
                let v = http::HeaderValue::from_str(r).expect("digits and a dash");
                headers.insert(http::header::RANGE, v);
            }
            let res = shared
                .http
                .stream(Method::GET, uri, headers)
                .await
                .map_err(|e| Signal::Unusable(format!("continuation not sent: {e}")))?;
            let header = |name| {
                res.headers()
                    .get(name)
                    .and_then(|v: &http::HeaderValue| v.to_str().ok())
                    .map(str::to_string)
            };
            let content_range = header(http::header::CONTENT_RANGE);
            let content_length =
                header(http::header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
            heal::check_continuation(&c, res.status(), content_range.as_deref(), content_length)?;
            tracing::info!(client = %note.plan.client, from = c.first, to = c.last, source = ?issued.provenance.as_ref().map(|p| p.source), "media continuation streaming");
            Ok(Body::from(res.into_body()))
        };
        Box::pin(fut)
    }
}
