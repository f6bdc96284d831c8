//! googlevideo requests and captions: the token goes into the URL (query `pot`, `/pot/` path
//! segments, manifests, `/api/timedtext`) or, for SABR, into the protobuf body. The binding
//! comes from the player response the URL was learned from and the session's regime. On the
//! way back every refusal goes to the one refusal policy ([`crate::heal::policy`]), with one
//! budget per client request: a 403 to a GET/HEAD is re-sent with the other regime's token or
//! a fresh one before the client sees it; a UMP stream is watched for STREAM_PROTECTION_STATUS
//! 2/3 (acted on for the next request: its bytes are already the client's); a GET whose body
//! breaks after the client has the headers is resumed ([`crate::heal::resume`]) with the same
//! token, and with a fresh one only when that is refused too, each continuation proved to be
//! the rest of the same object.

use std::sync::Arc;

use http::header::CONTENT_TYPE;
use http::{HeaderMap, Method, Request, Response, Uri};
use http_body_util::combinators::BoxBody;
use hudsucker::{Body, RequestOrResponse};

use super::plan::{
    MediaVerdict, Pass, Placement, Plan, apply_url, can_resend, judge_media_response,
    media_identity, plan_captions, plan_media, sabr_choice,
};
use super::stages::{fresh_token, not_sent};
use super::{Note, PotHandler, Shared, with_path_and_query};
use crate::bindings::Regime;
use crate::classify::{Route, split_path_query, url_param};
use crate::heal::resume::{Refetch, Resuming};
use crate::heal::{self, Answer, Blame, Decision, History, Object, Outcome, Span, Stop};
use crate::learn::session::{PlaybackInfo, media_url_keys};
use crate::observe::{Kind, Rewrite};
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
    /// attempt in the log).
    async fn reissue(
        &self,
        note: &MediaNote,
        token: &Token,
        what: &str,
    ) -> Result<http::Response<hyper::body::Incoming>, Stop> {
        let new_pq = apply_url(&note.original_pq, note.plan.place, token, &note.plan.client)
            .ok_or(Stop::Unbuildable)?;
        let uri = with_path_and_query(&note.uri, &new_pq).ok_or(Stop::Unbuildable)?;
        self.shared
            .http
            .stream(note.method.clone(), uri, note.headers.clone())
            .await
            .map_err(|e| {
                let stop = not_sent(&e);
                tracing::warn!(reason = %stop, "{what} could not be sent");
                stop
            })
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
            ex.rewrote(Rewrite::Media);
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
            ex.kind(Kind::Sabr);
        }
        let whole = match self.read_request(req, host, "SABR").await {
            Ok(w) => w,
            Err(out) => return out,
        };
        if sabr_choice(&whole.raw, &self.shared.settings) == TokenChoice::KeepClients {
            tracing::debug!(%host, "SABR: client sent its own token");
            if let Some(ex) = self.observed() {
                ex.outcome(crate::observe::Outcome::Kept);
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
            ex.rewrote(Rewrite::Sabr);
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
                ex.rewrote(Rewrite::Captions);
            }
        }
        RequestOrResponse::Request(req)
    }

    /// The watch stage: every refusal is judged by the refusal policy, which spends this
    /// request's one budget; the client gets the first answer that is not a refusal (or the
    /// last refusal, when healing stops).
    pub(super) async fn on_media_response(
        &self,
        mut res: Response<Body>,
        mut note: MediaNote,
    ) -> Response<Body> {
        let resendable = can_resend(&note.method, note.plan.place);
        let mut history = History::new(resendable, self.regime_confirmed(&note));
        loop {
            let content_type = res
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            match judge_media_response(res.status(), content_type) {
                MediaVerdict::Rejected => {
                    if let Some(ex) = self.observed() {
                        ex.refused_token();
                    }
                    tracing::warn!(host = %note.host, client = %note.plan.client, regime = ?note.regime, token = %note.token.redacted(), "upstream answered 403 to a request carrying the proxy's token");
                    let outcome = Outcome::Forbidden;
                    let resent = match history.decide(&outcome) {
                        Decision::OtherRegime => self.resend_other_regime(&mut note).await,
                        Decision::FreshToken { same_ok, .. } => {
                            self.resend_fresh_token(&mut note, &outcome, same_ok).await
                        }
                        Decision::ForNext(blame) => {
                            blame_for_next(&self.shared, &note, blame, &outcome);
                            return res;
                        }
                        Decision::GiveUp(stop) => Err(stop),
                        Decision::Deliver | Decision::Resume { .. } => return res,
                    };
                    match resent {
                        Ok(next) => res = next,
                        Err(stop) => {
                            tracing::warn!(client = %note.plan.client, reason = %stop, "media request refused; the client gets the 403");
                            return res;
                        }
                    }
                }
                MediaVerdict::Delivered { accepted, ump } => {
                    if let Some(s) = note.session().filter(|_| accepted) {
                        self.shared
                            .regimes
                            .observe(&s, &note.plan.client, note.regime);
                    }
                    if ump {
                        // A UMP 200 is not yet an acceptance: its refusals are judged as
                        // things stood before it.
                        return self.watch_ump(res, note, history);
                    }
                    if accepted {
                        history.accepted();
                        self.learn_proof_target(&note, res.status());
                    }
                    return self.resuming(res, note, history);
                }
            }
        }
    }

    /// A media GET served with potproxy's token in its query teaches the prover of new
    /// minters a URL to prove their tokens against ([`crate::proof`]).
    fn learn_proof_target(&self, note: &MediaNote, status: http::StatusCode) {
        if let (Some(prover), Placement::MediaUrl(_), Some(_)) =
            (self.shared.tokens.prover(), note.plan.place, &note.issued)
        {
            prover.learn(&note.method, &note.uri.to_string(), status, &note.binding);
        }
    }

    /// Passes a UMP stream on as it comes; an in-band refusal is judged by the policy and acted
    /// on for the next request.
    fn watch_ump(
        &self,
        res: Response<Body>,
        note: MediaNote,
        mut history: History,
    ) -> Response<Body> {
        history.streaming();
        let shared = self.shared.clone();
        let exchange = self.exchange.clone();
        let on_status = move |status: u64| {
            let outcome = Outcome::Protection(status);
            if let Decision::ForNext(blame) = history.decide(&outcome) {
                if let Some(ex) = &exchange {
                    ex.refused_token();
                }
                tracing::warn!(client = %note.plan.client, regime = ?note.regime, ?blame, "googlevideo: stream protection status {status}; the next request gets another token");
                blame_for_next(&shared, &note, blame, &outcome);
            }
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

    /// [`Decision::FreshToken`] for a refused request: the token reported refused, the request
    /// sent again with a fresh one (which `note` then carries).
    async fn resend_fresh_token(
        &self,
        note: &mut MediaNote,
        why: &Outcome,
        same_ok: bool,
    ) -> Result<Response<Body>, Stop> {
        let req = TokenRequest::new(note.binding.clone());
        let issued = fresh_token(
            &self.shared.tokens,
            &req,
            note.issued.as_ref(),
            why,
            same_ok,
        )
        .await?;
        let res = self
            .reissue(note, &issued.token, "re-issued media request")
            .await?;
        tracing::info!(client = %note.plan.client, status = %res.status(), source = ?issued.provenance.as_ref().map(|p| p.source), "re-issued a refused media request with a fresh token");
        if let Some(ex) = self.observed() {
            ex.token_from(&note.binding, Some(&issued));
            if res.status() == http::StatusCode::FORBIDDEN {
                ex.refused_token();
            }
        }
        note.token = issued.token.clone();
        note.issued = Some(issued);
        Ok(res.map(Body::from))
    }

    /// [`Decision::OtherRegime`]: the request sent again with the other regime's token (which
    /// `note` then carries).
    async fn resend_other_regime(&self, note: &mut MediaNote) -> Result<Response<Body>, Stop> {
        let other = note.regime.other();
        let (who, video) = media_identity(note.playback.as_ref());
        let binding = note.plan.binding(&who, video, other);
        if binding == Binding::Unknown || binding == note.binding {
            return Err(Stop::BothRegimesRefused);
        }
        let issued = self
            .issued_for(binding.clone())
            .await
            .map_err(|e| Stop::NoToken(crate::errtext::error_chain(&e)))?;
        let res = self
            .reissue(note, &issued.token, "retry with the other regime")
            .await?;
        tracing::info!(client = %note.plan.client, from = ?note.regime, to = ?other, status = %res.status(), "retried a rejected media request with the other regime's token");
        note.regime = other;
        note.binding = binding;
        note.token = issued.token.clone();
        note.issued = Some(issued);
        Ok(res.map(Body::from))
    }

    /// Wraps a successful GET's body so a break mid-body is resumed (see [`MediaRefetch`]);
    /// other responses pass as they are.
    fn resuming(&self, res: Response<Body>, note: MediaNote, history: History) -> Response<Body> {
        if !res.status().is_success()
            || note.method != Method::GET
            || !matches!(note.plan.place, Placement::MediaUrl(_))
        {
            return res;
        }
        let first = Answer::of(res.status(), res.headers());
        let Some(len) = first.content_length.filter(|n| *n > 0) else {
            return res;
        };
        let (path, query) = split_path_query(&note.original_pq);
        let query_range = url_param(path, query, "range");
        let clen = url_param(path, query, "clen").and_then(|v| v.parse::<u64>().ok());
        let span = heal::response_span(
            query_range.as_deref(),
            path.contains("/range/"),
            res.status(),
            first.content_range.as_deref(),
        );
        let Some(span) = span else {
            return res;
        };
        let what = format!("{} itag media", note.plan.client);
        let refetch = Arc::new(MediaRefetch {
            shared: self.shared.clone(),
            object: Object::of(&first, span, clen),
            span,
            len,
            healing: Arc::new(std::sync::Mutex::new(Some((note, history)))),
            exchange: self.exchange.clone(),
        });
        let (parts, body) = res.into_parts();
        let body = Resuming::new(body, len, refetch, what);
        Response::from_parts(parts, Body::from(BoxBody::new(body)))
    }
}

/// [`Decision::ForNext`]: nothing can be re-sent, so the next request gets the other regime
/// (`Blame::Binding`) or another token (`Blame::Token`: this one reported refused).
fn blame_for_next(shared: &Shared, note: &MediaNote, blame: Blame, why: &Outcome) {
    let req = TokenRequest::new(note.binding.clone());
    match (blame, &note.issued) {
        (Blame::Token, Some(issued)) => {
            shared.tokens.refused(&req, issued, &why.to_string());
        }
        (Blame::Token, None) => shared.tokens.forget(&req),
        (Blame::Binding, _) => {
            if let Some(s) = note.session() {
                shared
                    .regimes
                    .observe(&s, &note.plan.client, note.regime.other());
            }
            shared.tokens.forget(&req);
        }
    }
}

/// Fetches the remainder of a broken media response, as the refusal policy says: the same
/// token first (a reset is not a refusal), a fresh one when that is refused; each answer must
/// prove to be the rest of the same object ([`heal::check_continuation`]).
struct MediaRefetch {
    shared: Arc<Shared>,
    /// The first response's object.
    object: Object,
    span: Span,
    len: u64,
    /// The request as last sent and what this client request went through; taken by the one
    /// continuation in flight.
    healing: Arc<std::sync::Mutex<Option<(MediaNote, History)>>>,
    /// The exchange being resumed, for the live page's counts.
    exchange: Option<Arc<crate::observe::Exchange>>,
}

impl Refetch for MediaRefetch {
    fn refetch(&self, delivered: u64) -> futures::future::BoxFuture<'static, Result<Body, Stop>> {
        let shared = self.shared.clone();
        if let Some(ex) = &self.exchange {
            ex.resumed();
        }
        let slot = self.healing.clone();
        let (object, span, len) = (self.object.clone(), self.span, self.len);
        let exchange = self.exchange.clone();
        Box::pin(async move {
            let taken = slot.lock().expect("healing lock").take();
            let Some((mut note, mut history)) = taken else {
                return Err(Stop::CannotResend);
            };
            let c = heal::continuation(span, len, delivered, &object);
            let result = match c {
                Some(c) => {
                    let healing = Healing {
                        shared: &shared,
                        exchange: exchange.as_deref(),
                    };
                    continue_body(healing, &mut note, &mut history, &c, &object, delivered).await
                }
                None => Err(Stop::Unbuildable),
            };
            *slot.lock().expect("healing lock") = Some((note, history));
            result
        })
    }
}

/// What a continuation works with: the proxy's shared state, and the exchange it continues
/// (marked on the live page when a token is blamed).
#[derive(Clone, Copy)]
struct Healing<'a> {
    shared: &'a Shared,
    exchange: Option<&'a crate::observe::Exchange>,
}

/// Asks the policy about the cut at `delivered` and acts until a continuation proves to be the
/// rest of the object or healing stops.
async fn continue_body(
    healing: Healing<'_>,
    note: &mut MediaNote,
    history: &mut History,
    c: &heal::Continuation,
    object: &Object,
    delivered: u64,
) -> Result<Body, Stop> {
    let shared = healing.shared;
    let mut outcome = Outcome::Cut { delivered };
    loop {
        match history.decide(&outcome) {
            Decision::Resume { .. } => {}
            Decision::FreshToken { same_ok, .. } => {
                let req = TokenRequest::new(note.binding.clone());
                let issued = fresh_token(
                    &shared.tokens,
                    &req,
                    note.issued.as_ref(),
                    &outcome,
                    same_ok,
                )
                .await?;
                if let Some(ex) = healing.exchange {
                    ex.refused_token();
                    ex.token_from(&note.binding, Some(&issued));
                }
                note.token = issued.token.clone();
                note.issued = Some(issued);
            }
            Decision::GiveUp(stop) => return Err(stop),
            // A body under way was accepted under its regime and can be re-sent.
            Decision::Deliver | Decision::OtherRegime | Decision::ForNext(_) => {
                return Err(Stop::CannotResend);
            }
        }
        let pq = match &c.query_range {
            Some(r) => heal::with_query_range(&note.original_pq, r),
            None => note.original_pq.clone(),
        };
        let uri = apply_url(&pq, note.plan.place, &note.token, &note.plan.client)
            .and_then(|new_pq| with_path_and_query(&note.uri, &new_pq))
            .ok_or(Stop::Unbuildable)?;
        let mut headers = note.headers.clone();
        headers.remove(http::header::RANGE);
        headers.remove(http::header::IF_RANGE);
        for (name, value) in [
            (http::header::RANGE, &c.range_header),
            (http::header::IF_RANGE, &c.if_range),
        ] {
            if let Some(v) = value
                .as_deref()
                .and_then(|v| http::HeaderValue::from_str(v).ok())
            {
                headers.insert(name, v);
            }
        }
        let res = match shared.http.stream(Method::GET, uri, headers).await {
            Ok(res) => res,
            Err(e) => {
                tracing::warn!(client = %note.plan.client, reason = %not_sent(&e), "media continuation got no answer");
                outcome = Outcome::NotSent;
                continue;
            }
        };
        match heal::check_continuation(c, object, &Answer::of(res.status(), res.headers())) {
            Ok(()) => {
                history.accepted();
                tracing::info!(client = %note.plan.client, from = c.first, to = c.last, left = history.left(), source = ?note.issued.as_ref().and_then(|i| i.provenance.as_ref()).map(|p| p.source), "media continuation streaming");
                return Ok(Body::from(res.into_body()));
            }
            Err(o) => {
                tracing::warn!(client = %note.plan.client, from = c.first, reason = %o, "media continuation not usable");
                outcome = o;
            }
        }
    }
}
